import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { HostGitLimits } from '../git-limits.js';
import { FetchCancelledError, FetchError, GIT_SSH_COMMAND, HostGit } from '../host-git.js';
import { RemotePolicy, RemoteRefusedError, type Lookup } from './remote-policy.js';
import { sameRefs } from './mirror-refs.js';

export { FetchCancelledError, FetchError };

export interface MirrorCacheOptions {
  /** Limits of host-side git (memory, file size, …); default DEFAULT_HOST_GIT_LIMITS. */
  limits?: Partial<HostGitLimits>;
  /** Network destinations allowed although their addresses are loopback, private, … (`OZ_GIT_ALLOWED_HOSTS`). */
  allowedHosts?: readonly string[];
  /** How host names are resolved (tests); default getaddrinfo. */
  lookup?: Lookup;
  /** Where refused and unreachable destinations are told in full (the user only gets a generic line). */
  logger?: Pick<Logger, 'warn'>;
}

/** Where git will connect, and how it must run to connect exactly there. */
export interface GitDestination {
  /** What git is given (the rewritten GitHub URL, a local repository's real path). */
  url: string;
  config: [string, string][];
  env: Record<string, string>;
}

/** A URL for messages: no user or password. */
export function displayUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1');
}

/** The packs a fetch was writing when git died (tmp_pack_…): removed, not left to pile up. */
function packTemps(repo: string): Set<string> {
  try {
    return new Set(readdirSync(join(repo, 'objects', 'pack')).filter((name) => name.startsWith('tmp_')));
  } catch {
    return new Set();
  }
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
  /** Every host-side git of this worker (the publisher's too) runs through this, under its limits. */
  readonly git: HostGit;
  private readonly remotes: RemotePolicy;
  /** Each mirror's origin as read from its config once (the worker wrote it when it made the mirror; nothing else writes there). */
  private readonly origins = new Map<string, string>();

  constructor(
    cacheDir: string,
    /** Directories `file://` repositories may come from; empty refuses them. */
    private readonly fileRoots: readonly string[],
    /** Where a repository URL is really fetched from (the GitHub base URL setting); default: as given. */
    private readonly rewrite: (url: string) => string = (url) => url,
    private readonly options: MirrorCacheOptions = {},
  ) {
    this.git = new HostGit(options.limits);
    this.remotes = new RemotePolicy({
      ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
      ...(options.lookup ? { lookup: options.lookup } : {}),
      sshCommand: GIT_SSH_COMMAND,
    });
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
   * Where git goes for `given` (see {@link source}), checked: a network
   * remote's host is resolved and every address judged by the destination
   * policy (src/worker/provisioning/remote-policy.ts), and git is pinned to
   * those addresses. A refusal is a FetchError with the same line as an
   * unreachable host; the reason goes to the worker's log only.
   */
  async destination(given: string, verb: 'fetch' | 'push to' = 'fetch'): Promise<GitDestination> {
    const url = this.source(given);
    return { url, ...(await this.pin(url, given, verb)) };
  }

  /** Pins for git to reach `url` (nothing for a local path, already judged by {@link source}). */
  private async pin(url: string, given: string, verb: 'fetch' | 'push to'): Promise<{ config: [string, string][]; env: Record<string, string> }> {
    if (url.startsWith('/')) return { config: [], env: {} };
    try {
      const pinned = await this.remotes.check(url);
      return { config: pinned.config, env: pinned.env };
    } catch (error) {
      if (!(error instanceof RemoteRefusedError)) throw error;
      throw this.unreachable(given, verb, error.detail);
    }
  }

  /** The one line a user gets for a destination refused or not answering; the detail is logged. */
  unreachable(given: string, verb: 'fetch' | 'push to', detail: string): FetchError {
    this.options.logger?.warn({ url: displayUrl(given), detail }, `host-side git could not ${verb} a repository: refused or unreachable`);
    return new FetchError(`could not ${verb} ${displayUrl(given)}: the host is not reachable or not allowed`, 'unreachable', detail);
  }

  /** A failed git as the run's user should read it. */
  private explain(error: unknown, given: string): unknown {
    if (!(error instanceof FetchError)) return error;
    if (error.failure === 'unreachable') return this.unreachable(given, 'fetch', error.detail);
    if (error.failure === 'redirect') {
      this.options.logger?.warn({ url: displayUrl(given), detail: error.detail }, 'host-side git: a remote answered with a redirect (not followed)');
      return new FetchError(
        `could not fetch ${displayUrl(given)}: it answers with a redirect, which this worker does not follow; give the repository's final URL`,
        'redirect',
        error.detail,
      );
    }
    if (error.failure === 'limit') return new FetchError(`could not fetch ${displayUrl(given)}: ${error.message}`, 'limit', error.detail);
    return error;
  }

  /**
   * Fetch `url` into the team's mirror (clone it the first time); returns the
   * mirror's path. `signal` (the run's cancellation) kills a git in progress
   * and rejects with a FetchCancelledError. `auth` is git environment for
   * the fetch only (the team's token as a header), never stored in the mirror.
   */
  async ensure(teamId: string, url: string, signal?: AbortSignal, auth: Record<string, string> = {}): Promise<string> {
    const source = this.source(url);
    const { teamDir, path } = this.mirrorOf(teamId, source);
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
      await this.update(teamDir, path, source, url, signal, auth);
    } finally {
      release();
    }
    return path;
  }

  private mirrorOf(teamId: string, source: string): { teamDir: string; path: string } {
    const teamDir = join(this.mirrors, this.name(`team\0${teamId}`));
    return { teamDir, path: join(teamDir, `${this.name(`url\0${teamId}\0${source}`)}.git`) };
  }

  /**
   * Where the team's mirror of `url` is, if this cache has made it already
   * (fetched or not since: {@link ensure} brings it up to date), else null,
   * also for a URL {@link ensure} would refuse. A sandbox can be started on
   * it while the fetch runs.
   */
  existing(teamId: string, url: string): string | null {
    let source: string;
    try {
      source = this.source(url);
    } catch {
      return null;
    }
    const { path } = this.mirrorOf(teamId, source);
    return existsSync(path) ? path : null;
  }

  private async update(teamDir: string, path: string, source: string, given: string, signal: AbortSignal | undefined, auth: Record<string, string>): Promise<void> {
    mkdirSync(teamDir, { recursive: true, mode: 0o711 });
    if (!existsSync(path)) {
      const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        const pins = await this.pin(source, given, 'fetch');
        // 0644 files and 0755 directories whatever the worker's umask;
        // --no-local: a local source goes through upload-pack like a remote
        // one, never hardlinked or copied file by file into the mirror.
        await this.git
          .run(['clone', '--mirror', '--no-local', '--quiet', '--config', 'core.sharedRepository=0644', '--', source, temp], {
            signal,
            env: { ...auth, ...pins.env },
            config: pins.config,
          })
          .catch((error: unknown) => {
            throw this.explain(error, given);
          });
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
    // Judged is what git will use: the mirror's own origin (its source when the mirror was made).
    let origin = this.origins.get(path);
    if (origin === undefined) {
      origin = (await this.git.run(['--git-dir', path, 'config', '--get', 'remote.origin.url'], { signal })).trim();
      this.origins.set(path, origin);
    }
    // A local origin whose refs the mirror has already: nothing to fetch (a git process pair and
    // its upload-pack cost tens of milliseconds on every run's dispatch otherwise).
    if (origin.startsWith('/') && sameRefs(origin, path)) return;
    const pins = await this.pin(origin, given, 'fetch');
    for (let attempt = 1; ; attempt++) {
      const before = packTemps(path);
      try {
        await this.git.run(['--git-dir', path, 'fetch', '--prune', '--quiet', 'origin'], { signal, env: { ...auth, ...pins.env }, config: pins.config });
        return;
      } catch (error) {
        for (const temp of packTemps(path)) if (!before.has(temp)) rmSync(join(path, 'objects', 'pack', temp), { force: true });
        // Retried: a lost race for a ref lock with another worker; not a limit, a refusal or a cancel.
        if (attempt >= 3 || !(error instanceof FetchError) || error.failure !== 'failed') throw this.explain(error, given);
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
