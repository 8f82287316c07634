import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FetchCancelledError, FetchError, MirrorCache } from '../../src/worker/provisioning/mirror-cache.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';

let dir: string;
let roots: string;
let cache: MirrorCache;
let cacheDir: string;
const servers: Server[] = [];

beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'oz-mirror-cache-')));
  roots = join(dir, 'repos');
  mkdirSync(roots);
  cacheDir = join(dir, 'cache');
  // The slow servers below are on loopback, which host-side git may reach only when allowed.
  cache = new MirrorCache(cacheDir, [roots], undefined, { allowedHosts: ['127.0.0.1'] });
});

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A new commit on `main` of the bare repository `makeBareRepo` made as `<roots>/<name>.git`; returns its id. */
function commit(name: string, file: string): string {
  const work = join(roots, `${name}-work`);
  writeFileSync(join(work, file), `${file} ${randomBytes(4).toString('hex')}\n`);
  git(work, 'add', '-A');
  git(work, 'commit', '--quiet', '-m', file);
  git(work, 'push', '--quiet', join(roots, `${name}.git`), 'main');
  return git(work, 'rev-parse', 'HEAD').trim();
}

function has(mirror: string, object: string): boolean {
  try {
    git(dirname(mirror), '--git-dir', mirror, 'cat-file', '-e', object);
    return true;
  } catch {
    return false;
  }
}

/** Inode numbers of the files under `objects/` of a repository. */
function objectInodes(repo: string): Set<number> {
  const found = new Set<number>();
  for (const entry of readdirSync(join(repo, 'objects'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) found.add(statSync(join(entry.parentPath, entry.name)).ino);
  }
  return found;
}

function packs(mirror: string): number {
  return readdirSync(join(mirror, 'objects', 'pack')).filter((f) => f.endsWith('.pack')).length;
}

function looseObjects(mirror: string): number {
  return Number(/^count: (\d+)$/m.exec(git(dirname(mirror), '--git-dir', mirror, 'count-objects', '-v'))?.[1]);
}

/** Pids of live processes whose command line mentions `marker`. */
function processesWith(marker: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** An HTTP server that takes requests and never answers: a fetch from it hangs until killed. */
async function hangingServer(): Promise<{ url: string; marker: string; requests: () => number; open: () => number }> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createServer(() => requests++);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const marker = `slow-${randomBytes(6).toString('hex')}`;
  return { url: `http://127.0.0.1:${port}/${marker}.git`, marker, requests: () => requests, open: () => sockets.size };
}

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MirrorCache', () => {
  it('gives each team its own mirror of one URL, sharing no objects', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const mirrorB = await cache.ensure('team-b', url);
    const onlyA = commit('app', 'later.txt');
    const mirrorA = await cache.ensure('team-a', url);
    expect(mirrorA).not.toBe(mirrorB);
    expect(dirname(mirrorA)).not.toBe(dirname(mirrorB));
    expect(has(mirrorA, onlyA)).toBe(true);
    expect(has(mirrorB, onlyA)).toBe(false);
    expect(existsSync(join(mirrorB, 'objects', 'info', 'alternates'))).toBe(false);
    // Fetched through upload-pack: no object file hardlinked from the origin (or between teams).
    const origin = objectInodes(join(roots, 'app.git'));
    const [a, b] = [objectInodes(mirrorA), objectInodes(mirrorB)];
    expect([...a, ...b].filter((ino) => origin.has(ino))).toEqual([]);
    expect([...a].filter((ino) => b.has(ino))).toEqual([]);
    // Fetched again, B gets the commit from the origin, as A did.
    expect(await cache.ensure('team-b', url)).toBe(mirrorB);
    expect(has(mirrorB, onlyA)).toBe(true);
  });

  it('maps every spelling of a local repository to one mirror per team', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const bare = join(roots, 'app.git');
    symlinkSync(bare, join(roots, 'link.git'));
    const spellings = [url, bare, `${bare}/`, `${roots}/./app.git`, `file://${roots}//app.git/`, join(roots, 'link.git'), `file://${join(roots, 'link.git')}`];
    for (const team of ['team-a', 'team-b']) {
      const mirrors = new Set<string>();
      for (const spelling of spellings) mirrors.add(await cache.ensure(team, spelling));
      expect(mirrors.size).toBe(1);
    }
    expect(await cache.ensure('team-a', url)).not.toBe(await cache.ensure('team-b', url));
  });

  it('does not let a symlink swapped later redirect an existing mirror', async () => {
    makeBareRepo(roots, 'one', { 'one.txt': '1\n' });
    const two = makeBareRepo(roots, 'two', { 'two.txt': '2\n' });
    const link = join(roots, 'link.git');
    symlinkSync(join(roots, 'one.git'), link);
    const first = await cache.ensure('team-a', `file://${link}`);
    unlinkSync(link);
    symlinkSync(join(roots, 'two.git'), link);
    const second = await cache.ensure('team-a', `file://${link}`);
    expect(second).not.toBe(first);
    expect(second).toBe(await cache.ensure('team-a', two));
    // The first mirror still follows the repository it was made from.
    expect(git(dir, '--git-dir', first, 'config', 'remote.origin.url').trim()).toBe(join(roots, 'one.git'));
    const onlyOne = commit('one', 'more.txt');
    expect(await cache.ensure('team-a', join(roots, 'one.git'))).toBe(first);
    expect(has(first, onlyOne)).toBe(true);
    expect(has(second, onlyOne)).toBe(false);
  });

  it('refuses local repositories outside the allowed roots, relative ones, and the cache itself', async () => {
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    const outside = makeBareRepo(elsewhere, 'secret', { 'secret.txt': 'secret\n' });
    await expect(cache.ensure('team-a', outside)).rejects.toThrow(/outside OZ_FILE_REPO_ROOTS/);
    await expect(cache.ensure('team-a', join(elsewhere, 'secret.git'))).rejects.toThrow(/outside OZ_FILE_REPO_ROOTS/);
    // A symlink inside the roots is judged by where it leads.
    symlinkSync(join(elsewhere, 'secret.git'), join(roots, 'sneaky.git'));
    await expect(cache.ensure('team-a', join(roots, 'sneaky.git'))).rejects.toThrow(/outside OZ_FILE_REPO_ROOTS/);
    await expect(cache.ensure('team-a', 'repos/app.git')).rejects.toThrow(/absolute path/);
    const mine = await cache.ensure('team-a', makeBareRepo(roots, 'app', { 'a.txt': 'a\n' }));
    const strict = new MirrorCache(cacheDir, [dir]);
    await expect(strict.ensure('team-b', mine)).rejects.toThrow(/inside this worker's repository cache/);
    await expect(new MirrorCache(cacheDir, []).ensure('team-a', join(roots, 'app.git'))).rejects.toThrow(/are off on this worker/);
  });

  it('fetches a local origin only when its refs changed: a new commit, a new tag, a deleted branch', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const origin = join(roots, 'app.git');
    const mirror = await cache.ensure('team-a', url);
    const fetchHead = join(mirror, 'FETCH_HEAD');
    // Nothing changed since the clone: no git ran (a fetch writes FETCH_HEAD).
    await cache.ensure('team-a', url);
    expect(existsSync(fetchHead)).toBe(false);
    const next = commit('app', 'next.txt');
    await cache.ensure('team-a', url);
    expect(git(dir, '--git-dir', mirror, 'rev-parse', 'refs/heads/main').trim()).toBe(next);
    git(dir, '--git-dir', origin, 'tag', 'v1', next);
    git(dir, '--git-dir', origin, 'branch', 'extra', next);
    await cache.ensure('team-a', url);
    expect(git(dir, '--git-dir', mirror, 'for-each-ref', '--format=%(refname)').trim().split('\n')).toEqual(['refs/heads/extra', 'refs/heads/main', 'refs/tags/v1']);
    git(dir, '--git-dir', origin, 'branch', '-D', 'extra');
    await cache.ensure('team-a', url);
    expect(git(dir, '--git-dir', mirror, 'for-each-ref', '--format=%(refname)').trim().split('\n')).toEqual(['refs/heads/main', 'refs/tags/v1']);
    // And again nothing: the last fetch's FETCH_HEAD stays as it was.
    const before = statSync(fetchHead).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    await cache.ensure('team-a', url);
    expect(statSync(fetchHead).mtimeMs).toBe(before);
  });

  it('runs no automatic gc or maintenance, whatever the mirror asks for', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const mirror = await cache.ensure('team-a', url);
    const config = (key: string, value: string): string => git(dir, '--git-dir', mirror, 'config', key, value);
    // Automatic maintenance that would pack loose objects as soon as there is one,
    // and gc that would repack as soon as there are two packs, in the foreground.
    config('maintenance.auto', 'true');
    config('maintenance.loose-objects.enabled', 'true');
    config('maintenance.loose-objects.auto', '1');
    config('gc.auto', '1');
    config('gc.autoPackLimit', '1');
    config('gc.autoDetach', 'false');
    expect(packs(mirror)).toBe(1);
    // Kept as a second pack: gc would merge it.
    config('fetch.unpackLimit', '1');
    const kept = commit('app', 'packed.txt');
    await cache.ensure('team-a', url);
    expect(has(mirror, kept)).toBe(true);
    expect(packs(mirror)).toBe(2);
    // Loose: the loose-objects task would pack them. A fetch that fscks its
    // objects always keeps a pack, so the loose object is written by hand.
    config('fetch.unpackLimit', '1000');
    writeFileSync(join(dir, 'loose.txt'), 'loose\n');
    git(dir, '--git-dir', mirror, 'hash-object', '-w', join(dir, 'loose.txt'));
    commit('app', 'loose.txt');
    await cache.ensure('team-a', url);
    expect(looseObjects(mirror)).toBeGreaterThan(0);
    expect(packs(mirror)).toBe(3);
    expect(existsSync(join(mirror, 'gc.pid')) || existsSync(join(mirror, 'gc.log'))).toBe(false);
  });

  it('rejects at once on an aborted signal, without starting git', async () => {
    const slow = await hangingServer();
    const controller = new AbortController();
    controller.abort();
    await expect(cache.ensure('team-a', slow.url, controller.signal)).rejects.toBeInstanceOf(FetchCancelledError);
    await new Promise((r) => setTimeout(r, 200));
    expect(slow.requests()).toBe(0);
    expect(existsSync(join(cacheDir, 'mirrors')) && readdirSync(join(cacheDir, 'mirrors')).flatMap((team) => readdirSync(join(cacheDir, 'mirrors', team)))).toEqual([]);
  });

  it('kills a clone in progress on abort, helpers included, and leaves nothing behind', async () => {
    const slow = await hangingServer();
    const controller = new AbortController();
    const ensure = cache.ensure('team-a', slow.url, controller.signal);
    await until('the clone to reach the server', () => slow.requests() > 0);
    expect(processesWith(slow.marker).length).toBeGreaterThan(0);
    controller.abort();
    const error = await ensure.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FetchCancelledError);
    expect(error).toBeInstanceOf(FetchError); // What the run's caller already handles.
    expect((error as Error).message).toBe('the fetch was cancelled');
    expect(processesWith(slow.marker)).toEqual([]);
    await until('git-remote-http to hang up', () => slow.open() === 0, 2000);
    const teams = readdirSync(join(cacheDir, 'mirrors'));
    expect(teams.flatMap((team) => readdirSync(join(cacheDir, 'mirrors', team)))).toEqual([]);
  });

  it('kills a fetch in progress on abort, without retrying it', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const mirror = await cache.ensure('team-a', url);
    // The origin became slow (a stalled server).
    const slow = await hangingServer();
    git(dir, '--git-dir', mirror, 'config', 'remote.origin.url', slow.url);
    const controller = new AbortController();
    const ensure = cache.ensure('team-a', url, controller.signal);
    await until('the fetch to reach the server', () => slow.requests() > 0);
    controller.abort();
    await expect(ensure).rejects.toBeInstanceOf(FetchCancelledError);
    expect(processesWith(slow.marker)).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    expect(slow.requests()).toBe(1);
  });

  it('lets a caller waiting behind another fetch of the mirror stop waiting, and keeps the fetches one at a time', async () => {
    const slow = await hangingServer();
    const first = new AbortController();
    const second = new AbortController();
    const third = new AbortController();
    const one = cache.ensure('team-a', slow.url, first.signal);
    await until('the first clone to reach the server', () => slow.requests() === 1);
    const two = cache.ensure('team-a', slow.url, second.signal);
    second.abort();
    await expect(two).rejects.toBeInstanceOf(FetchCancelledError);
    // The first still runs: the third waits behind it, not behind the abandoned second.
    const three = cache.ensure('team-a', slow.url, third.signal);
    await new Promise((r) => setTimeout(r, 300));
    expect(slow.requests()).toBe(1);
    first.abort();
    await expect(one).rejects.toBeInstanceOf(FetchCancelledError);
    await until('the third clone to reach the server', () => slow.requests() === 2);
    third.abort();
    await expect(three).rejects.toBeInstanceOf(FetchCancelledError);
    expect(processesWith(slow.marker)).toEqual([]);
  });
});
