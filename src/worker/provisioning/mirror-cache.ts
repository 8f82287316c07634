import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

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

function git(args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new FetchCancelledError());
    // Its own process group, so a kill reaches git's helpers too (remote-https, index-pack, upload-pack).
    const child = spawn('git', [...SAFE_CONFIG, ...args], { env: GIT_ENV, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
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
    child.once('close', (code) => done(stopped ?? (code === 0 ? null : new FetchError(stderr.trim().split('\n').slice(-3).join(' ') || `git exited with ${code}`))));
  });
}

/** `promise`, or a FetchCancelledError as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new FetchCancelledError());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(resolve, reject).then(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Whether git takes `url` for a path on this machine (no `:` before the first `/`), not `host:path`. */
function isLocalPath(url: string): boolean {
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  return colon < 0 || (slash >= 0 && slash < colon);
}

/**
 * Worker-side bare mirrors of the environments' repositories, keyed by
 * (team, URL): a team never reads another team's cached repository, even for
 * the same URL. Names are keyed hashes (HMAC with a secret kept in the cache),
 * so nobody on the host can find a team's mirror by guessing. Directories are
 * searchable but not listable, mirrors world-readable: the sandbox's uid must
 * read the one mirror bound into it.
 *
 * Host-side git only ever runs on these bare mirrors, which the worker owns,
 * never on a workspace.
 */
export class MirrorCache {
  private readonly secret: Buffer;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly mirrors: string;

  constructor(
    cacheDir: string,
    /** Directories `file://` repositories may come from; empty refuses them. */
    private readonly fileRoots: readonly string[],
  ) {
    this.mirrors = join(cacheDir, 'mirrors');
    for (const dir of [cacheDir, this.mirrors]) {
      mkdirSync(dir, { recursive: true, mode: 0o711 });
      chmodSync(dir, 0o711);
    }
    const secretFile = join(cacheDir, 'mirror-key');
    if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
    this.secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'hex');
  }

  private name(value: string): string {
    return createHmac('sha256', this.secret).update(value).digest('hex').slice(0, 32);
  }

  /**
   * What git fetches for `url`: remote URLs as given; local ones (`file://`
   * or a path) by their real path, so every spelling of one repository keys
   * one mirror and a symlink changed later cannot redirect a mirror's key.
   * Local ones outside the allowed roots, or in this cache (another team's
   * mirror), are refused.
   */
  private source(url: string): string {
    const isFileUrl = url.startsWith('file://');
    if (!isFileUrl && !isLocalPath(url)) return url;
    let path: string;
    try {
      const given = isFileUrl ? fileURLToPath(url) : url;
      if (!isAbsolute(given)) throw new FetchError(`${url}: a local repository must be an absolute path or a file:// URL`);
      path = realpathSync(given);
    } catch (error) {
      if (error instanceof FetchError) throw error;
      throw new FetchError(`${url} does not exist on this worker`);
    }
    const inside = (root: string): boolean => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
    const cache = realpathSync(this.mirrors);
    if (inside(cache) || cache.startsWith(path + sep)) throw new FetchError(`${url} is inside this worker's repository cache`);
    if (!this.fileRoots.some((root) => existsSync(root) && inside(realpathSync(root)))) {
      throw new FetchError(
        this.fileRoots.length === 0
          ? `local repositories are off on this worker; set OZ_FILE_REPO_ROOTS to the directories they may come from`
          : `${url} is outside OZ_FILE_REPO_ROOTS (${this.fileRoots.join(':')})`,
      );
    }
    return path;
  }

  /**
   * Fetch `url` into the team's mirror (clone it the first time); returns the
   * mirror's path. `signal` (the run's cancellation) kills a git in progress
   * and rejects with a FetchCancelledError.
   */
  async ensure(teamId: string, url: string, signal?: AbortSignal): Promise<string> {
    const source = this.source(url);
    const teamDir = join(this.mirrors, this.name(`team\0${teamId}`));
    const path = join(teamDir, `${this.name(`url\0${teamId}\0${source}`)}.git`);
    // One fetch per mirror at a time in this worker; git's own ref locks
    // cover other workers sharing the cache (a lost race is retried). A
    // caller that stops waiting still holds its place until those ahead are
    // done; one whose git runs rejects once that git is dead.
    const ahead = this.locks.get(path) ?? Promise.resolve();
    let release = (): void => {};
    const released = new Promise<void>((r) => (release = r));
    const lock = Promise.all([ahead, released]).then(() => {});
    this.locks.set(path, lock);
    void lock.then(() => {
      if (this.locks.get(path) === lock) this.locks.delete(path);
    });
    try {
      await untilAborted(ahead, signal);
      await this.update(teamDir, path, source, signal);
    } finally {
      release();
    }
    return path;
  }

  private async update(teamDir: string, path: string, source: string, signal?: AbortSignal): Promise<void> {
    mkdirSync(teamDir, { recursive: true, mode: 0o711 });
    if (!existsSync(path)) {
      const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        // 0644 files and 0755 directories whatever the worker's umask;
        // --no-local: a local source goes through upload-pack like a remote
        // one, never hardlinked or copied file by file into the mirror.
        await git(['clone', '--mirror', '--no-local', '--quiet', '--config', 'core.sharedRepository=0644', '--', source, temp], signal);
        try {
          renameSync(temp, path);
        } catch {
          // Another worker made it first: use theirs.
        }
      } finally {
        rmSync(temp, { recursive: true, force: true });
      }
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await git(['--git-dir', path, 'fetch', '--prune', '--quiet', 'origin'], signal);
        return;
      } catch (error) {
        if (attempt >= 3 || error instanceof FetchCancelledError) throw error;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
