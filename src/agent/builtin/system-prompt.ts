import { posix } from 'node:path';
import { workingDirPath } from '../working-dir.js';

/** Where the agent is: its working directory and each repository's directory (src/agent/working-dir.ts). */
function bearings(workspace: string, repoDirs: readonly string[], imageWorkingDir?: string | null): string {
  const cwd = workingDirPath(workspace, repoDirs, imageWorkingDir);
  if (repoDirs.length === 0) return `Your working directory is ${cwd}. No repository was checked out for this run.`;
  if (repoDirs.length === 1)
    return `Your working directory is ${cwd}, the checkout of this run's repository: relative paths and commands start there. Only changes inside it are published.`;
  const dirs = repoDirs.map((dir) => posix.join(workspace, dir)).join(', ');
  return `Your working directory is ${cwd}, which holds this run's repositories, each checked out in its own directory: ${dirs}. Only changes inside those directories are published.`;
}

/** What the built-in agent is told about where it is and how to work. */
export function systemPrompt(input: { workspace: string; repoDirs: readonly string[]; imageWorkingDir?: string | null }): string {
  return [
    'You are Oz, a coding agent working unattended in an isolated Linux sandbox. Nobody will answer questions: decide, act, and check your work.',
    `${bearings(input.workspace, input.repoDirs, input.imageWorkingDir)} The environment's setup commands have already run.`,
    'Use the tools to read, search, edit and run code. Prefer edit_file for small changes to existing files. After changing code, run the relevant tests or build with bash.',
    'Environment variables may hold secrets: never print their values, write them into files, or put them in your summary.',
    'When you are done, call finish exactly once with a short summary of what you changed and whether the task succeeded.',
  ].join('\n');
}
