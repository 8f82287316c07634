import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FetchCancelledError, FetchError, git } from '../host-git.js';

export { FetchCancelledError, FetchError };

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
    /** Where a repository URL is really fetched from (the GitHub base URL setting); default: as given. */
    private readonly rewrite: (url: string) => string = (url) => url,
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
   * mirror), are refused. The publisher pushes to the same place.
   */
  source(given: string): string {
    const url = this.rewrite(given);
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
   * and rejects with a FetchCancelledError. `auth` is git environment for
   * the fetch only (the team's token as a header), never stored in the mirror.
   */
  async ensure(teamId: string, url: string, signal?: AbortSignal, auth: Record<string, string> = {}): Promise<string> {
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
      await this.update(teamDir, path, source, signal, auth);
    } finally {
      release();
    }
    return path;
  }

  private async update(teamDir: string, path: string, source: string, signal: AbortSignal | undefined, auth: Record<string, string>): Promise<void> {
    mkdirSync(teamDir, { recursive: true, mode: 0o711 });
    if (!existsSync(path)) {
      const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        // 0644 files and 0755 directories whatever the worker's umask;
        // --no-local: a local source goes through upload-pack like a remote
        // one, never hardlinked or copied file by file into the mirror.
        await git(['clone', '--mirror', '--no-local', '--quiet', '--config', 'core.sharedRepository=0644', '--', source, temp], signal, auth);
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
        await git(['--git-dir', path, 'fetch', '--prune', '--quiet', 'origin'], signal, auth);
        return;
      } catch (error) {
        if (attempt >= 3 || error instanceof FetchCancelledError) throw error;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
