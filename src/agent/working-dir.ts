import { posix } from 'node:path';

/**
 * Where a run's setup commands and harness processes start, relative to the
 * workspace (as `Sandbox.exec` takes `cwd`): the repository's directory when
 * the environment has exactly one, so a relative path lands in what is
 * published; else (several repositories, or none) the workspace itself, `.`.
 */
export function workingDir(repoDirs: readonly string[]): string {
  return repoDirs.length === 1 ? (repoDirs[0] as string) : '.';
}

/** {@link workingDir} as the sandbox's processes see it (`/workspace/app`). */
export function workingDirPath(workspacePath: string, repoDirs: readonly string[]): string {
  return posix.join(workspacePath, workingDir(repoDirs));
}
