import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A repository could not be fetched; the message is for the run's user. */
export class FetchError extends Error {}

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

function git(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { env: GIT_ENV, timeout: FETCH_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error) reject(new FetchError(String(stderr).trim().split('\n').slice(-3).join(' ') || error.message));
      else resolve();
    });
  });
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
  private readonly locks = new Map<string, Promise<unknown>>();
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

  /** Refuse `file://` URLs outside the allowed roots, and this cache itself (another team's mirror). */
  private checkLocal(url: string): void {
    if (!url.startsWith('file://')) return;
    let path: string;
    try {
      path = realpathSync(fileURLToPath(url));
    } catch {
      throw new FetchError(`${url} does not exist on this worker`);
    }
    const inside = (root: string): boolean => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
    const cache = realpathSync(this.mirrors);
    if (inside(cache) || cache.startsWith(path + sep)) throw new FetchError(`${url} is inside this worker's repository cache`);
    if (!this.fileRoots.some((root) => existsSync(root) && inside(realpathSync(root)))) {
      throw new FetchError(
        this.fileRoots.length === 0
          ? `file:// repositories are off on this worker; set OZ_FILE_REPO_ROOTS to the directories they may come from`
          : `${url} is outside OZ_FILE_REPO_ROOTS (${this.fileRoots.join(':')})`,
      );
    }
  }

  /** Fetch `url` into the team's mirror (clone it the first time); returns the mirror's path. */
  async ensure(teamId: string, url: string): Promise<string> {
    this.checkLocal(url);
    const teamDir = join(this.mirrors, this.name(`team\0${teamId}`));
    const path = join(teamDir, `${this.name(`url\0${teamId}\0${url}`)}.git`);
    // One fetch per mirror at a time in this worker; git's own ref locks
    // cover other workers sharing the cache (a lost race is retried).
    const previous = this.locks.get(path) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.update(teamDir, path, url));
    this.locks.set(path, next);
    try {
      await next;
    } finally {
      if (this.locks.get(path) === next) this.locks.delete(path);
    }
    return path;
  }

  private async update(teamDir: string, path: string, url: string): Promise<void> {
    mkdirSync(teamDir, { recursive: true, mode: 0o711 });
    const safe = ['-c', 'protocol.ext.allow=never', '-c', 'core.hooksPath=/dev/null'];
    if (!existsSync(path)) {
      const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        // 0644 files and 0755 directories whatever the worker's umask.
        await git([...safe, 'clone', '--mirror', '--quiet', '--config', 'core.sharedRepository=0644', '--', url, temp]);
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
        await git([...safe, '--git-dir', path, 'fetch', '--prune', '--quiet', 'origin']);
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
