import { ENV, SETTINGS } from './git-servers.js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cgroups } from '../../src/sandbox/bwrap/cgroups.js';
import type { Sandbox } from '../../src/sandbox/sandbox-backend.js';
import { FetchError, MirrorCache } from '../../src/worker/provisioning/mirror-cache.js';
import { Publisher, PublishError, type PublishInput } from '../../src/worker/results/publisher.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { addBomb, hostileBundle, hostileRepo } from './hostile-pack.js';

/**
 * Host-side git runs under limits and checks what it receives (issue 16
 * item 2): a pack of a few hundred bytes whose delta declares 1 GiB makes an
 * unlimited git allocate and fill 1 GiB (measured: ~1 GB max RSS); here each
 * git has 256 MiB, so the fetch fails at once with the memory-limit error.
 */
const MIB = 1024 * 1024;
const LIMITS = { memoryBytes: 256 * MIB };
const BOMB = 1024 * MIB;

let dir: string;
let roots: string;
let cacheDir: string;
let cache: MirrorCache;
const servers: Server[] = [];

beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'oz-host-git-limits-')));
  roots = join(dir, 'repos');
  mkdirSync(roots);
  cacheDir = join(dir, 'cache');
  cache = new MirrorCache(cacheDir, [roots], undefined, { limits: LIMITS, allowedHosts: ['127.0.0.1'] });
});

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

function run(cwd: string, args: string[], input?: Buffer): string {
  return execFileSync('git', args, { cwd, env: ENV, encoding: 'utf8', ...(input ? { input } : {}) });
}

/** A commit on top of `parent` whose tree has an entry named `.git` (fsck: hasDotgit), made with plumbing in `repo`. */
function dotGitCommit(repo: string, parent: string): string {
  const blob = run(repo, ['hash-object', '-w', '--stdin'], Buffer.from('[core]\n\tfsmonitor = touch /tmp/pwned\n')).trim();
  const tree = run(repo, ['hash-object', '-t', 'tree', '-w', '--literally', '--stdin'], Buffer.concat([Buffer.from('100644 .git\0'), Buffer.from(blob, 'hex')])).trim();
  return run(repo, ['commit-tree', tree, '-p', parent, '-m', 'sneaky']).trim();
}

function mirrorsLeft(): string[] {
  const mirrors = join(cacheDir, 'mirrors');
  return readdirSync(mirrors).flatMap((team) => readdirSync(join(mirrors, team)));
}

/** A sandbox whose publishing step writes `bundle` to stdout: what a hostile agent controls. */
function sandboxWriting(bundle: Buffer): Sandbox {
  const exec: Sandbox['exec'] = async (_argv, options) => {
    options.onOutput('stdout', bundle);
    return { exitCode: 0, signal: null };
  };
  return { exec } as unknown as Sandbox;
}

function publishInput(sandbox: Sandbox, url: string, base: string, mirror: string): PublishInput {
  return {
    runId: 'run-1',
    title: 'Change',
    summary: 'changed',
    sandbox,
    env: {},
    repos: [{ url }],
    dirs: ['app'],
    bases: [base],
    mirrors: [mirror],
    redact: (text) => text,
    artifact: () => {},
    signal: new AbortController().signal,
  };
}

function hasRef(bare: string, ref: string): boolean {
  try {
    git(bare, 'rev-parse', '--verify', '--quiet', ref);
    return true;
  } catch {
    return false;
  }
}

describe('host-side git limits', () => {
  it('fails the clone of a remote whose tiny pack declares a 1 GiB delta, with the memory-limit error', async () => {
    const bare = hostileRepo(roots, 'evil', BOMB);
    const pack = readdirSync(join(bare, 'objects', 'pack')).find((f) => f.endsWith('.pack')) as string;
    expect(statSync(join(bare, 'objects', 'pack', pack)).size).toBeLessThan(1024);
    const error = await cache.ensure('team-a', `file://${bare}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FetchError);
    expect((error as Error).message).toBe(`could not fetch file://${bare}: git exceeded its memory limit (256 MiB) while reading the repository`);
    // It was the receiving side resolving the delta that hit the limit.
    expect((error as FetchError).detail).toMatch(/tried to allocate 1073741825 bytes/);
    expect(mirrorsLeft()).toEqual([]);
  });

  it('fails the fetch into an existing mirror when its remote turns hostile, and leaves the mirror as it was', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const mirror = await cache.ensure('team-a', url);
    const before = git(mirror, 'rev-parse', 'main').trim();
    addBomb(join(roots, 'app.git'), BOMB);
    const error = await cache.ensure('team-a', url).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/git exceeded its memory limit \(256 MiB\) while reading the repository$/);
    expect(git(mirror, 'rev-parse', 'main').trim()).toBe(before);
    // The pack index-pack was writing is not left behind.
    expect(readdirSync(join(mirror, 'objects', 'pack')).filter((f) => f.startsWith('tmp_'))).toEqual([]);
  });

  it('checks every fetched object: a tree with a .git entry is refused', async () => {
    const url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    const bare = join(roots, 'app.git');
    run(bare, ['update-ref', 'refs/heads/main', dotGitCommit(bare, git(bare, 'rev-parse', 'main').trim())]);
    const error = await cache.ensure('team-a', url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FetchError);
    expect((error as Error).message).toMatch(/hasDotgit/);
    expect(mirrorsLeft()).toEqual([]);
  });

  it('caps the size of what git writes', async () => {
    const work = join(dir, 'big');
    mkdirSync(work);
    run(work, ['init', '--quiet', '--initial-branch=main']);
    writeFileSync(join(work, 'noise.bin'), randomBytes(3 * MIB));
    run(work, ['add', '-A']);
    run(work, ['commit', '--quiet', '-m', 'noise']);
    run(roots, ['clone', '--quiet', '--bare', work, join(roots, 'big.git')]);
    const small = new MirrorCache(cacheDir, [roots], undefined, { limits: { ...LIMITS, maxFileBytes: MIB } });
    const error = await small.ensure('team-a', join(roots, 'big.git')).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/git exceeded its file size limit \(1 MiB\) while writing the repository$/);
    await expect(cache.ensure('team-a', join(roots, 'big.git'))).resolves.toBeDefined();
  });

  it('runs every host git under the limits (rlimits, and its own cgroup where the worker can make one)', async () => {
    const marker = `limits-${randomBytes(6).toString('hex')}`;
    const server = createServer(() => {});
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const controller = new AbortController();
    const fetching = cache.ensure('team-a', `http://127.0.0.1:${port}/${marker}.git`, controller.signal).catch((e: unknown) => e);
    let pids: string[] = [];
    for (const deadline = Date.now() + 10_000; pids.length === 0 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
      pids = readdirSync('/proc').filter(
        (pid) =>
          /^\d+$/.test(pid) &&
          (() => {
            try {
              return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker) && readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('git');
            } catch {
              return false;
            }
          })(),
      );
    }
    expect(pids.length).toBeGreaterThan(0);
    try {
      for (const pid of pids) {
        const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
        expect(limits).toMatch(new RegExp(`Max address space\\s+${256 * MIB}\\s+${256 * MIB}\\s+bytes`));
        expect(limits).toMatch(/Max cpu time\s+1800\s+1830\s+seconds/);
        expect(limits).toMatch(new RegExp(`Max file size\\s+${16 * 1024 * MIB}\\s+${16 * 1024 * MIB}\\s+bytes`));
        expect(limits).toMatch(/Max core file size\s+0\s+0/);
        const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
        if (Cgroups.detect()) {
          const line = cgroups.split('\n').find((l) => /:memory:|^0::/.test(l) && l.includes('/oz-g')) as string;
          expect(line, cgroups).toBeDefined();
          const path = line.split(':')[2] as string;
          const v1 = join('/sys/fs/cgroup/memory', path, 'memory.limit_in_bytes');
          expect(readFileSync(existsSync(v1) ? v1 : join('/sys/fs/cgroup', path, 'memory.max'), 'utf8').trim()).toBe(String(256 * MIB));
        } else {
          console.log('no cgroups this test can manage: only the rlimits were checked');
        }
      }
    } finally {
      controller.abort();
      await fetching;
    }
  });
});

describe("reading a run's bundle", () => {
  let url: string;
  let mirror: string;
  let base: string;
  let publisher: Publisher;

  beforeEach(async () => {
    url = makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
    mirror = await cache.ensure('team-a', url);
    base = git(mirror, 'rev-parse', 'main').trim();
    publisher = new Publisher(SETTINGS, cache, cacheDir);
  });

  const publishing = (bundle: Buffer): Promise<unknown> => publisher.publish(publishInput(sandboxWriting(bundle), url, base, mirror)).catch((e: unknown) => e);

  it('fails on a bundle whose tiny pack declares a 1 GiB delta, with the memory-limit error, and pushes nothing', async () => {
    const bundle = hostileBundle(base, 'oz/run-1', BOMB);
    expect(bundle.length).toBeLessThan(1024);
    const error = await publishing(bundle);
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toBe("The run's changes could not be read: git exceeded its memory limit (256 MiB) while reading the repository");
    expect(hasRef(join(roots, 'app.git'), 'refs/heads/oz/run-1')).toBe(false);
  });

  it('checks every object of the bundle before pushing it: a tree with a .git entry is refused', async () => {
    const work = join(dir, 'work');
    run(dir, ['clone', '--quiet', join(roots, 'app.git'), work]);
    run(work, ['update-ref', 'refs/heads/oz/run-1', dotGitCommit(work, base)]);
    const bundle = join(dir, 'changes.bundle');
    run(work, ['bundle', 'create', bundle, 'refs/heads/oz/run-1', `^${base}`]);
    const error = await publishing(readFileSync(bundle));
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toMatch(/^The run's changes could not be read: .*hasDotgit/);
    expect(hasRef(join(roots, 'app.git'), 'refs/heads/oz/run-1')).toBe(false);
  });

  it("takes exactly the run's branch from the bundle header", async () => {
    const work = join(dir, 'work');
    run(dir, ['clone', '--quiet', join(roots, 'app.git'), work]);
    writeFileSync(join(work, 'README.md'), 'changed\n');
    run(work, ['commit', '--quiet', '-am', 'change']);
    run(work, ['update-ref', 'refs/heads/oz/run-1', 'HEAD']);
    const bundle = join(dir, 'changes.bundle');
    run(work, ['bundle', 'create', bundle, 'refs/heads/oz/run-1', 'refs/heads/main', `^${base}`]);
    expect((await publishing(readFileSync(bundle))) as Error).toMatchObject({ message: "The run's changes could not be read: the bundle must hold exactly refs/heads/oz/run-1" });
    expect((await publishing(Buffer.from('# v3 git bundle\n@object-format=sha1\n\nPACK'))) as Error).toMatchObject({
      message: "The run's changes could not be read: the bundle has no v2 bundle header",
    });
    // The same change as a proper bundle is published.
    run(work, ['bundle', 'create', bundle, 'refs/heads/oz/run-1', `^${base}`]);
    await expect(publisher.publish(publishInput(sandboxWriting(readFileSync(bundle)), url, base, mirror))).resolves.toEqual([`Pushed branch oz/run-1 to ${url}.`]);
    expect(git(join(roots, 'app.git'), 'show', 'oz/run-1:README.md')).toBe('changed\n');
  });
});
