import { posix } from 'node:path';

/**
 * Where a run's setup commands and harness processes start, relative to the
 * workspace (as `Sandbox.exec` takes `cwd`): the repository's directory when
 * the environment has exactly one, so a relative path lands in what is
 * published; with several, the workspace itself, `.`; with none, the
 * image's `WorkingDir` when the run is on an image that names one (an
 * absolute path), else the workspace.
 */
export function workingDir(repoDirs: readonly string[], imageWorkingDir?: string | null): string {
  if (repoDirs.length === 1) return repoDirs[0] as string;
  if (repoDirs.length === 0 && imageWorkingDir && posix.isAbsolute(imageWorkingDir)) return imageWorkingDir;
  return '.';
}

/** {@link workingDir} as the sandbox's processes see it (`/workspace/app`, `/app`). */
export function workingDirPath(workspacePath: string, repoDirs: readonly string[], imageWorkingDir?: string | null): string {
  return posix.resolve(workspacePath, workingDir(repoDirs, imageWorkingDir));
}
