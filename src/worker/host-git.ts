import { spawn } from 'node:child_process';

/** A repository could not be fetched; the message is for the run's user. */
export class FetchError extends Error {}

/** The fetch was stopped by the caller's signal (the run was cancelled). */
export class FetchCancelledError extends FetchError {
  constructor() {
    super('the fetch was cancelled');
  }
}

const FETCH_TIMEOUT_MS = 15 * 60 * 1000;

/**
 * The environment host-side git runs with: no user or system config, no
 * prompts, no transport that runs commands (`ext::`), and none of the worker
 * user's credentials (no `~/.netrc`, ssh keys or agent): a team reaches only
 * what it could reach anonymously or with its own secrets, never with the
 * operator's.
 */
const GIT_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/nonexistent',
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
  GIT_SSH_COMMAND: 'ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o IdentityAgent=none',
};

/**
 * Config for every host-side git: no hooks, no `ext::`, no credential helper,
 * and no automatic gc or maintenance (which would run after a fetch, maybe
 * detached, outliving the fetch and its cancellation).
 */
const SAFE_CONFIG = ['-c', 'protocol.ext.allow=never', '-c', 'core.hooksPath=/dev/null', '-c', 'credential.helper=', '-c', 'gc.auto=0', '-c', 'maintenance.auto=false'];

/** git's complaint in one line: what the remote said (why a push was refused), then the last lines. */
function summarize(stderr: string): string {
  const lines = stderr.trim().split('\n').map((line) => line.trim()).filter(Boolean);
  const remote = lines.filter((line) => line.startsWith('remote:')).slice(-5);
  return [...new Set([...remote, ...lines.slice(-3)])].join(' ');
}

/**
 * Run host-side git (on worker-owned bare repositories only, never a
 * workspace) with the safe environment and config above; `extraEnv` adds
 * variables (e.g. an auth header as GIT_CONFIG_* so it is not on the command line).
 */
export function git(args: string[], signal?: AbortSignal, extraEnv: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new FetchCancelledError());
    // Its own process group, so a kill reaches git's helpers too (remote-https, index-pack, upload-pack).
    const child = spawn('git', [...SAFE_CONFIG, ...args], { env: { ...GIT_ENV, ...extraEnv }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8192)));
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
      if (error) reject(error);
      else resolve();
    };
    child.once('error', (error) => done(new FetchError(error.message)));
    // 'close', not 'exit': every process holding stderr (the whole group) is gone.
    child.once('close', (code) => done(stopped ?? (code === 0 ? null : new FetchError(summarize(stderr) || `git exited with ${code}`))));
  });
}

