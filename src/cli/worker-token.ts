import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { UsageError } from './usage-error.js';

/** Where `oz worker` got its token from. */
export type WorkerTokenSource = 'env' | 'file' | 'flag';

/** Printed (to stderr) when the token came from `--token`. */
export const TOKEN_FLAG_WARNING =
  'warning: --token puts the worker token in the process list (ps, /proc/PID/cmdline), where every user of this host can read it; ' +
  'set OZ_WORKER_TOKEN or use --token-file FILE instead\n';

/**
 * A worker token from a file: one line (surrounding whitespace and the
 * trailing newline are not part of it), refused when others may read the
 * file, which would expose the token as the process list does.
 */
function readTokenFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new UsageError(`--token-file: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    // The opened file's mode (not the path's, which could change in between).
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new UsageError(`--token-file: ${path} is a directory`);
    if ((stat.mode & 0o044) !== 0) {
      throw new UsageError(`--token-file: ${path} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it, or set OZ_WORKER_TOKEN`);
    }
    const token = readFileSync(fd, 'utf8').trim();
    if (token === '') throw new UsageError(`--token-file: ${path} is empty`);
    if (/\s/.test(token)) throw new UsageError(`--token-file: ${path} must hold the token alone, on one line`);
    return token;
  } finally {
    closeSync(fd);
  }
}

/**
 * The worker token: `--token-file FILE`, else `--token` (still accepted, with
 * a warning: it is visible in the process list), else `OZ_WORKER_TOKEN`.
 */
export function resolveWorkerToken(options: { token?: string | undefined; tokenFile?: string | undefined }, fromEnv: string | null): { token: string; source: WorkerTokenSource } {
  if (options.token !== undefined && options.tokenFile !== undefined) throw new UsageError('--token and --token-file: choose one (better: --token-file, or OZ_WORKER_TOKEN)');
  if (options.tokenFile !== undefined) return { token: readTokenFile(options.tokenFile), source: 'file' };
  if (options.token !== undefined) {
    if (options.token.trim() === '') throw new UsageError('--token: must not be empty');
    return { token: options.token.trim(), source: 'flag' };
  }
  if (fromEnv) return { token: fromEnv, source: 'env' };
  throw new UsageError('a worker token is required: set OZ_WORKER_TOKEN, or pass --token-file FILE (a file only you can read); `oz worker-token create NAME` makes one');
}
