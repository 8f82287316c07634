import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { RunCgroup } from '../sandbox/bwrap/cgroups.js';
import { DEFAULT_HOST_GIT_LIMITS, hostGitCgroup, limitConfig, limitFailure, onPath, prlimitArgs, type HostGitLimits } from './git-limits.js';
import { SYSTEM_PATH } from '../core/system-path.js';

/**
 * What went wrong, for callers that word it for the run's user: a limit
 * (memory, CPU, file size, processes), the remote could not be reached (no
 * detail to the user: a refused destination and a closed port must look the
 * same), it answered with a redirect (not followed), anything else.
 */
export type FetchFailure = 'limit' | 'unreachable' | 'redirect' | 'failed' | 'cancelled';

/** A repository could not be fetched; the message is for the run's user, `detail` for the worker's log. */
export class FetchError extends Error {
  constructor(
    message: string,
    readonly failure: FetchFailure = 'failed',
    readonly detail: string = message,
  ) {
    super(message);
  }
}

/** The fetch was stopped by the caller's signal (the run was cancelled). */
export class FetchCancelledError extends FetchError {
  constructor() {
    super('the fetch was cancelled', 'cancelled');
  }
}

const FETCH_TIMEOUT_MS = 15 * 60 * 1000;
const MAX_STDOUT = 64 * 1024;

/** The ssh host-side git runs: no config, no keys, no agent, no prompts. */
export const GIT_SSH_COMMAND = 'ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o IdentityAgent=none';

/**
 * The environment host-side git runs with: no user or system config, no
 * prompts, no transport that runs commands (`ext::`), and none of the worker
 * user's credentials (no `~/.netrc`, ssh keys or agent): a team reaches only
 * what it could reach anonymously or with its own secrets, never with the
 * operator's. Two malloc arenas: each thread's arena would otherwise reserve
 * address space that counts against the limit.
 */
const GIT_ENV = {
  PATH: SYSTEM_PATH,
  LANG: 'C.UTF-8',
  HOME: '/nonexistent',
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
  GIT_SSH_COMMAND,
  MALLOC_ARENA_MAX: '2',
};

/**
 * Config for every host-side git: no hooks, no `ext::`, no credential helper,
 * and no automatic gc or maintenance (which would run after a fetch, maybe
 * detached, outliving the fetch and its cancellation).
 */
const SAFE_CONFIG = ['-c', 'protocol.ext.allow=never', '-c', 'core.hooksPath=/dev/null', '-c', 'credential.helper=', '-c', 'gc.auto=0', '-c', 'maintenance.auto=false'];

/**
 * Joins the cgroups named before `--`, then execs the rest (same pid):
 * nothing forks outside them. SIGXFSZ ignored (inherited through exec), so a
 * write past the file size limit fails with EFBIG and git says so ("File too
 * large") instead of dying of a signal its parent does not report.
 */
const LAUNCHER = "trap '' XFSZ; " + 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 111; shift; done; shift; exec "$@"';

/** git's complaint in one line: what the remote said (why a push was refused), then the last lines. */
function summarize(stderr: string): string {
  // git's `hint:` lines are advice for a person at a terminal (pull, then push again), not what happened.
  const lines = stderr
    .trim()
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('hint:'));
  const remote = lines.filter((line) => line.startsWith('remote:')).slice(-5);
  const refused = lines.filter((line) => line.startsWith('! [')).slice(-3);
  return [...new Set([...remote, ...refused, ...lines.slice(-3)])].join(' ');
}

/** Connection-level failures: the same (generic) answer for a closed port, a dead host and a refused one. */
const UNREACHABLE =
  /Failed to connect|Couldn't connect|Could not resolve|unable to look up|unable to connect|Connection refused|Connection timed out|Connection reset|timed out|Network is unreachable|No route to host|Name or service not known|Temporary failure in name resolution|Connection closed by|kex_exchange_identification|SSL connect error|Recv failure|Empty reply from server/i;

/** Remove a git's cgroup; the kernel may refuse for a moment after its last process died. */
function removeSoon(cgroup: RunCgroup, attempt = 0): void {
  cgroup.remove();
  if (attempt < 20 && cgroup.procsFiles.some((file) => existsSync(dirname(file)))) setTimeout(() => removeSoon(cgroup, attempt + 1), 100 * (attempt + 1)).unref();
}

/** Config as GIT_CONFIG_COUNT/KEY/VALUE: no command-line parsing of keys (URLs in `url.<base>.insteadOf`), nothing in `ps`. */
function configEnv(base: Record<string, string>, pairs: readonly (readonly [string, string])[]): Record<string, string> {
  const env = { ...base };
  let count = Number(env.GIT_CONFIG_COUNT ?? 0);
  for (const [key, value] of pairs) {
    env[`GIT_CONFIG_KEY_${count}`] = key;
    env[`GIT_CONFIG_VALUE_${count}`] = value;
    count++;
  }
  if (count > 0) env.GIT_CONFIG_COUNT = String(count);
  return env;
}

export interface GitOptions {
  /** The run's cancellation: kills git and its helpers, rejects with a FetchCancelledError. */
  signal?: AbortSignal | undefined;
  /** Extra environment (an auth header as GIT_CONFIG_*, so it is not on the command line). */
  env?: Record<string, string>;
  /** Extra config for this git only (a remote's pins), passed in the environment. */
  config?: readonly (readonly [string, string])[];
  /** A descriptor for git's stdin (a bundle's pack). */
  stdin?: number;
}

/**
 * Host-side git (on worker-owned bare repositories only, never a workspace)
 * with the safe environment and config above, under {@link HostGitLimits}.
 */
export class HostGit {
  readonly limits: HostGitLimits;
  private readonly config: string[];

  constructor(limits: Partial<HostGitLimits> = {}) {
    this.limits = { ...DEFAULT_HOST_GIT_LIMITS, ...limits };
    if (!onPath('prlimit', SYSTEM_PATH)) throw new Error('prlimit is not installed (util-linux): host-side git runs only under limits');
    this.config = limitConfig(this.limits).flatMap(([key, value]) => ['-c', `${key}=${value}`]);
  }

  /** Run `git args…`; resolves to its stdout (the first 64 KiB), rejects with a FetchError. */
  run(args: string[], options: GitOptions = {}): Promise<string> {
    const { signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new FetchCancelledError());
      let cgroup: RunCgroup | null;
      try {
        cgroup = hostGitCgroup(this.limits);
      } catch (error) {
        return reject(new FetchError(`could not make a cgroup for git: ${(error as Error).message}`));
      }
      const argv = ['-c', LAUNCHER, 'oz-git', ...(cgroup?.procsFiles ?? []), '--', 'prlimit', ...prlimitArgs(this.limits), '--', 'git', ...SAFE_CONFIG, ...this.config, ...args];
      // Its own process group, so a kill reaches git's helpers too (remote-https, index-pack, upload-pack).
      const child = spawn('/bin/sh', argv, {
        env: configEnv({ ...GIT_ENV, ...options.env }, options.config ?? []),
        detached: true,
        stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let stdout = '';
      (child.stderr as Readable).setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8192)));
      (child.stdout as Readable).setEncoding('utf8').on('data', (chunk: string) => {
        if (stdout.length < MAX_STDOUT) stdout = (stdout + chunk).slice(0, MAX_STDOUT);
      });
      let stopped: FetchError | null = null;
      const kill = (reason: FetchError): void => {
        stopped ??= reason;
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const onAbort = (): void => kill(new FetchCancelledError());
      const timer = setTimeout(() => kill(new FetchError(`git timed out after ${FETCH_TIMEOUT_MS / 60_000} minutes`)), FETCH_TIMEOUT_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (error: FetchError | null): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (cgroup) removeSoon(cgroup);
        if (error) reject(error);
        else resolve(stdout);
      };
      child.once('error', (error) => done(new FetchError(error.message)));
      // 'close', not 'exit': every process holding stderr (the whole group) is gone.
      child.once('close', (code, exitSignal) => {
        if (stopped) return done(stopped);
        if (code === 0) return done(null);
        done(this.failure(stderr, exitSignal, code, cgroup));
      });
    });
  }

  private failure(stderr: string, signal: NodeJS.Signals | null, code: number | null, cgroup: RunCgroup | null): FetchError {
    const detail = summarize(stderr) || (signal ? `git was killed by ${signal}` : `git exited with ${code}`);
    const limit = limitFailure(stderr, signal, { oomKills: cgroup?.oomKills() ?? 0, pidsRefused: cgroup?.pidsRefused() ?? 0 }, this.limits);
    if (limit) return new FetchError(limit, 'limit', detail);
    if (code === 111 && cgroup) return new FetchError('git could not join its cgroup', 'failed', detail);
    if (/returned error: 30[12378]\b/.test(stderr)) return new FetchError(detail, 'redirect', detail);
    if (UNREACHABLE.test(stderr)) return new FetchError(detail, 'unreachable', detail);
    return new FetchError(detail, 'failed', detail);
  }
}
