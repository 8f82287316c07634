import { isRunFailure, RunFailure } from '../../core/run-failure.js';
import { tool, type ToolSet } from 'ai';
import { z } from 'zod';
import type { ExecResult, Sandbox } from '../../sandbox/sandbox-backend.js';
import { OutputCapture } from './output-capture.js';

/** What the tools need from the run. */
export interface ToolContext {
  sandbox: Sandbox;
  /** Where tool processes start, relative to the workspace (`workingDir`): relative paths resolve from there. */
  cwd: string;
  /** The same directory as the sandbox sees it, for the tools' descriptions. */
  cwdPath: string;
  /** The environment every tool process gets (the run's, with its secrets). */
  env: Record<string, string>;
  /** Applied to everything a tool hands back to the model. */
  redact: (text: string) => string;
  /** The sandbox itself failed: the run must end; the model is not asked to cope. */
  fatal: (error: Error) => void;
}

const BASH_DEFAULT_TIMEOUT_S = 120;
const READ_DEFAULT_LINES = 2000;
const MAX_LINE = 2000;
const MAX_LIST = 1000;
/** edit_file reads the whole file: refuse beyond this (the model can use bash). */
const MAX_EDIT_BYTES = 4 * 1024 * 1024;

interface Captured extends ExecResult {
  stdout: OutputCapture;
  stderr: OutputCapture;
  combined: OutputCapture;
}

async function run(ctx: ToolContext, argv: string[], options: { stdin?: string; timeoutMs?: number; keep?: number } = {}): Promise<Captured> {
  const stdout = new OutputCapture(options.keep);
  const stderr = new OutputCapture(options.keep);
  const combined = new OutputCapture(options.keep);
  let result: ExecResult;
  try {
    result = await ctx.sandbox.exec(argv, {
      env: ctx.env,
      cwd: ctx.cwd,
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      onOutput: (stream, chunk) => {
        (stream === 'stdout' ? stdout : stderr).push(chunk);
        combined.push(chunk);
      },
    });
  } catch (error) {
    // The sandbox failed under a tool: the run ends (see ToolContext.fatal), the model is not asked to cope.
    const failure = isRunFailure(error) ? error : RunFailure.sandboxLost((error as Error).message, error);
    ctx.fatal(failure);
    throw failure;
  }
  return { ...result, stdout, stderr, combined };
}

/** A tool's error for the model: thrown, the SDK returns it as the tool's (error) result. */
function refuse(ctx: ToolContext, message: string): never {
  throw new Error(ctx.redact(message));
}

function failureText(ctx: ToolContext, result: Captured): string {
  return result.stderr.text(ctx.redact).trim() || `exit code ${result.exitCode ?? result.signal}`;
}

async function readWhole(ctx: ToolContext, path: string): Promise<string> {
  const size = await run(ctx, ['stat', '-L', '-c', '%s', '--', path]);
  if (size.exitCode !== 0) refuse(ctx, failureText(ctx, size));
  if (Number(size.stdout.text().trim()) > MAX_EDIT_BYTES) refuse(ctx, `${path} is larger than ${MAX_EDIT_BYTES} bytes; edit it with bash instead`);
  const read = await run(ctx, ['cat', '--', path], { keep: MAX_EDIT_BYTES });
  if (read.exitCode !== 0) refuse(ctx, failureText(ctx, read));
  return read.stdout.text();
}

async function writeWhole(ctx: ToolContext, path: string, content: string): Promise<void> {
  const write = await run(ctx, ['/bin/sh', '-c', 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"', 'write_file', path], { stdin: content });
  if (write.exitCode !== 0) refuse(ctx, failureText(ctx, write));
}

function count(haystack: string, needle: string): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) n++;
  return n;
}

/** The built-in agent's tools (docs/design.md "Harnesses"); each runs inside the run's sandbox, in `ctx.cwd`. */
export function agentTools(ctx: ToolContext) {
  const path = z.string().min(1).max(4096).describe(`A path, relative to ${ctx.cwdPath} or absolute`);
  return {
    bash: tool({
      description: `Run a bash command in ${ctx.cwdPath}. Returns stdout and stderr combined, and the exit code. Killed after timeout_seconds (default ${BASH_DEFAULT_TIMEOUT_S}). Long output is cut in the middle.`,
      inputSchema: z.strictObject({
        command: z.string().min(1).max(100_000),
        timeout_seconds: z.number().int().min(1).max(3600).optional(),
      }),
      execute: async ({ command, timeout_seconds }) => {
        const timeoutS = timeout_seconds ?? BASH_DEFAULT_TIMEOUT_S;
        const result = await run(ctx, ['/bin/bash', '-c', command], { timeoutMs: timeoutS * 1000 });
        const status = result.timedOut ? `[killed after the ${timeoutS} s timeout]` : result.signal ? `[killed by ${result.signal}]` : `[exit code ${result.exitCode}]`;
        const output = result.combined.text(ctx.redact);
        return `${output}${output.endsWith('\n') || !output ? '' : '\n'}${status}`;
      },
    }),
    read_file: tool({
      description: `Read a text file with line numbers; at most ${READ_DEFAULT_LINES} lines at a time (use start_line/end_line for more).`,
      inputSchema: z.strictObject({
        path,
        start_line: z.number().int().min(1).optional(),
        end_line: z.number().int().min(1).optional(),
      }),
      execute: async ({ path: file, start_line, end_line }) => {
        const start = start_line ?? 1;
        const end = end_line ?? start + READ_DEFAULT_LINES - 1;
        if (end < start) refuse(ctx, 'end_line must not be before start_line');
        const last = Math.min(end, start + READ_DEFAULT_LINES - 1);
        const read = await run(ctx, ['sed', '-n', `${start},${last}p`, '--', file], { keep: 4 * 1024 * 1024 });
        if (read.exitCode !== 0) refuse(ctx, failureText(ctx, read));
        // Redacted whole, before lines are cut (a cut through a secret would hide it from the redactor).
        const text = read.stdout.text(ctx.redact);
        if (text.includes('\u0000')) refuse(ctx, `${file} is a binary file`);
        const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
        if (lines.length === 0) return start === 1 ? `${file} is empty.` : `${file} has fewer than ${start} lines.`;
        const numbered = lines.map((line, i) => `${String(start + i).padStart(6)}\t${line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)} [line cut]` : line}`);
        const more = lines.length === last - start + 1 && last < end ? `\n[showing lines ${start}-${last}; read on from start_line ${last + 1}]` : '';
        return numbered.join('\n') + more;
      },
    }),
    write_file: tool({
      description: 'Create or overwrite a file with the given content (parent directories are created).',
      inputSchema: z.strictObject({ path, content: z.string().max(MAX_EDIT_BYTES) }),
      execute: async ({ path: file, content }) => {
        await writeWhole(ctx, file, content);
        return `Wrote ${Buffer.byteLength(content)} bytes to ${file}.`;
      },
    }),
    edit_file: tool({
      description: 'Replace one exact occurrence of old_string with new_string in a file. old_string must match exactly once (include surrounding lines to make it unique).',
      inputSchema: z.strictObject({ path, old_string: z.string().min(1), new_string: z.string() }),
      execute: async ({ path: file, old_string, new_string }) => {
        const content = await readWhole(ctx, file);
        const matches = count(content, old_string);
        if (matches === 0) refuse(ctx, `old_string was not found in ${file}; read the file and copy the text exactly`);
        if (matches > 1) refuse(ctx, `old_string matches ${matches} times in ${file}; include more surrounding text so it matches once`);
        const at = content.indexOf(old_string);
        await writeWhole(ctx, file, content.slice(0, at) + new_string + content.slice(at + old_string.length));
        return `Edited ${file}.`;
      },
    }),
    list_files: tool({
      description: `List files matching a glob (bash globstar: "**/*.ts", "src/*"), relative to path (default ${ctx.cwdPath}). At most ${MAX_LIST} entries; .git is left out.`,
      inputSchema: z.strictObject({ pattern: z.string().min(1).max(1000).default('**/*'), path: path.optional() }),
      execute: async ({ pattern, path: dir }) => {
        // compgen -G expands the glob without evaluating it as shell code.
        const list = await run(ctx, ['/bin/bash', '-c', 'shopt -s globstar dotglob nullglob && cd -- "$1" && compgen -G "$2"; true', 'list_files', dir ?? '.', pattern]);
        if (list.stderr.text().trim()) refuse(ctx, list.stderr.text().trim());
        const entries = list.stdout
          .text(ctx.redact)
          .split('\n')
          .filter((entry) => entry && entry !== '.git' && !entry.startsWith('.git/') && !entry.includes('/.git/'));
        if (entries.length === 0) return 'No files match.';
        const shown = entries.slice(0, MAX_LIST).join('\n');
        return entries.length > MAX_LIST || list.stdout.truncated ? `${shown}\n[more entries left out; narrow the pattern]` : shown;
      },
    }),
    grep: tool({
      description: 'Search file contents with an extended regular expression (grep -E), recursively; prints file:line:text. .git and binary files are skipped.',
      inputSchema: z.strictObject({
        pattern: z.string().min(1).max(1000),
        path: path.optional(),
        include: z.string().min(1).max(200).optional().describe('Only files whose name matches this glob, e.g. "*.ts"'),
      }),
      execute: async ({ pattern, path: where, include }) => {
        const argv = ['grep', '-rnIE', '--exclude-dir=.git', ...(include ? [`--include=${include}`] : []), '-e', pattern, '--', where ?? '.'];
        const found = await run(ctx, argv, { keep: 10_000 });
        if (found.exitCode === 1) return 'No matches.';
        if (found.exitCode !== 0) refuse(ctx, failureText(ctx, found));
        return found.stdout.text(ctx.redact);
      },
    }),
    finish: tool({
      description: 'End the task: a short summary of what you did and whether it succeeded. Call it once, last.',
      inputSchema: z.strictObject({ summary: z.string().min(1).max(20_000), success: z.boolean().default(true) }),
      execute: async () => 'Finished.',
    }),
  } satisfies ToolSet;
}

export type AgentTools = ReturnType<typeof agentTools>;
