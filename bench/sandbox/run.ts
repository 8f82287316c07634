/**
 * Sandbox benchmark: what the bubblewrap backend costs per run and per process,
 * what provisioning a 5,000-file repository costs with and without a warm
 * mirror, and (where a container engine answers) start, exec, restart and
 * destroy on the docker backend beside bwrap's, as ratios in the same run.
 *
 *   npm run build && npx tsx bench/sandbox/run.ts
 *
 * The code under test is loaded from the built dist/ (the backend finds the
 * sandbox init there, dist/in-sandbox/sandbox-init.js). Needs Linux, bwrap,
 * setpriv, prlimit and git; network "on" also needs root and slirp4netns.
 * Everything it makes lives in one temp directory under os.tmpdir() (0711, so
 * the sandboxes' uids can reach their mirrors): the bare repository, the mirror
 * caches and the backend's sandbox root. It is removed at the end, and every
 * sandbox is destroyed, also on SIGINT/SIGTERM.
 *
 * OZ_BENCH_ROOT puts that directory elsewhere (e.g. /dev/shm, to compare filesystems).
 *
 * Sizes: OZ_BENCH_SPAWNS (200), OZ_BENCH_SANDBOXES (50), OZ_BENCH_NET_SANDBOXES
 * (20, 0 to skip), OZ_BENCH_EXECS (300), OZ_BENCH_FILES (5000), OZ_BENCH_FIRST (3),
 * OZ_BENCH_SECOND (10), OZ_BENCH_DOCKER_SANDBOXES (20, 0 to skip the docker
 * part), OZ_BENCH_RESTARTS (20). Percentiles are nearest-rank. Results are written to
 * docs/benchmarks.md by hand.
 */
import { execFile, execFileSync, spawn, type StdioOptions } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Sandbox, SandboxBackend, SandboxSpec } from '../../src/sandbox/sandbox-backend.js';
import type * as BwrapModule from '../../src/sandbox/bwrap/bwrap-backend.js';
import type * as DockerModule from '../../src/sandbox/docker/docker-backend.js';
import type * as MirrorModule from '../../src/worker/provisioning/mirror-cache.js';
import type * as SetupModule from '../../src/worker/provisioning/workspace-setup.js';
import type * as RedactorModule from '../../src/secrets/redactor.js';
import { guard, intFromEnv as intFromEnvAtLeast, ms, onCleanup, progress, runCleanups, stats, table, type Stats, command, fromDist } from '../support.js';

// ---------------------------------------------------------------------------
// Parameters

/** Every size may be 0 (a part skipped). */
const intFromEnv = (name: string, fallback: number): number => intFromEnvAtLeast(name, fallback, 0);

const SPAWNS = intFromEnv('OZ_BENCH_SPAWNS', 200);
const SANDBOXES = intFromEnv('OZ_BENCH_SANDBOXES', 50);
const NET_SANDBOXES = intFromEnv('OZ_BENCH_NET_SANDBOXES', 20);
const EXECS = intFromEnv('OZ_BENCH_EXECS', 300);
const FILES = intFromEnv('OZ_BENCH_FILES', 5_000);
const FIRST = intFromEnv('OZ_BENCH_FIRST', 3);
const SECOND = intFromEnv('OZ_BENCH_SECOND', 10);
const DOCKER_SANDBOXES = intFromEnv('OZ_BENCH_DOCKER_SANDBOXES', 20);
const RESTARTS = intFromEnv('OZ_BENCH_RESTARTS', 20);
/** Where the temp directory goes (workspaces, mirrors, the repository): its filesystem matters for the clones. */
const ROOT = process.env.OZ_BENCH_ROOT || tmpdir();
const DIRS = 50;
const NODE_STARTS = 20;
const WARMUP = 3;
const EXEC_WARMUP = 20;
const TEAM = 'bench-team';
const EXEC_ENV = { PATH: '/usr/bin:/bin' };
const GiB = 1024 ** 3;
const LIMITS = { pids: 1024, memoryBytes: 4 * GiB, diskBytes: 10 * GiB };
/** Host-side git for making the repository: no user or system config. */
const GIT_ENV = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LANG: 'C.UTF-8' };
/** Hard stop: a run takes about a minute; this only catches a hang. */
const WATCHDOG_MS = 10 * 60_000;

// ---------------------------------------------------------------------------
// Cleanup: run in reverse order at the end, on SIGINT/SIGTERM, or on the watchdog.

/** Sandboxes not destroyed yet, so an interrupt can still destroy them. */
const live = new Set<Sandbox>();

// ---------------------------------------------------------------------------
// Small helpers

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

const { BwrapBackend } = await fromDist<typeof BwrapModule>('sandbox/bwrap/bwrap-backend.js');
const { DockerBackend } = await fromDist<typeof DockerModule>('sandbox/docker/docker-backend.js');
const { MirrorCache } = await fromDist<typeof MirrorModule>('worker/provisioning/mirror-cache.js');
const { setUpWorkspace } = await fromDist<typeof SetupModule>('worker/provisioning/workspace-setup.js');
const { Redactor } = await fromDist<typeof RedactorModule>('secrets/redactor.js');
type Backend = SandboxBackend;

// ---------------------------------------------------------------------------
// Baselines: a bare process start on the host

/** Spawn and wait until it exited and its stdio closed; returns the elapsed ms. */
function spawnOnce(file: string, args: string[], stdio: StdioOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(file, args, { stdio, env: EXEC_ENV });
    child.stdout?.resume();
    child.stderr?.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${file} exited with ${code}`))));
  });
}

async function repeat(n: number, warmup: number, once: () => Promise<number>): Promise<Stats> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await once());
  return stats(samples);
}

interface Row {
  what: string;
  stats: Stats;
}

async function benchBaselines(): Promise<Row[]> {
  progress(`bare process starts (${SPAWNS} each)`);
  return [
    { what: 'spawn /bin/true (stdio ignored)', stats: await repeat(SPAWNS, 10, () => spawnOnce('/bin/true', [], 'ignore')) },
    { what: 'spawn /bin/true (stdio piped)', stats: await repeat(SPAWNS, 10, () => spawnOnce('/bin/true', [], 'pipe')) },
    { what: "spawn /bin/sh -c 'echo hi' (piped)", stats: await repeat(SPAWNS, 10, () => spawnOnce('/bin/sh', ['-c', 'echo hi'], 'pipe')) },
    // The sandbox's init is a Node process: its start-up is part of every sandbox start.
    { what: 'spawn node -e 0 (piped)', stats: await repeat(NODE_STARTS, 2, () => spawnOnce(process.execPath, ['-e', '0'], 'pipe')) },
  ];
}

// ---------------------------------------------------------------------------
// Sandboxes

let runs = 0;

function spec(network: SandboxSpec['network'], mounts: string[] = []): SandboxSpec {
  return { runId: `bench${++runs}`, network, limits: LIMITS, mounts, onLimit: (kind) => console.error(`bench: sandbox hit its ${kind} limit`) };
}

async function create(backend: Backend, s: SandboxSpec): Promise<[Sandbox, number]> {
  const [sandbox, took] = await timed(() => backend.create(s));
  live.add(sandbox);
  return [sandbox, took];
}

async function destroy(sandbox: Sandbox): Promise<number> {
  const [, took] = await timed(() => sandbox.destroy());
  live.delete(sandbox);
  return took;
}

async function run(sandbox: Sandbox, argv: string[], cwd?: string): Promise<string> {
  let out = '';
  const result = await sandbox.exec(argv, { env: EXEC_ENV, ...(cwd ? { cwd } : {}), onOutput: (_stream, chunk) => (out += chunk.toString()) });
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} in the sandbox: exit ${result.exitCode} ${result.signal ?? ''}: ${out.trim()}`);
  return out;
}

/** Create, check it answers, destroy: `n` sandboxes one after another. */
async function lifecycle(backend: Backend, network: SandboxSpec['network'], n: number): Promise<Row[]> {
  progress(`${n} sandboxes, network ${network}`);
  const starts: number[] = [];
  const teardowns: number[] = [];
  for (let i = 0; i < WARMUP + n; i++) {
    const [sandbox, started] = await create(backend, spec(network));
    // It answers; with network on bwrap, slirp4netns's tap0 is there.
    await run(sandbox, network === 'on' && backend.name === 'bwrap' ? ['/bin/grep', '-q', 'tap0:', '/proc/net/dev'] : ['/bin/true']);
    const gone = await destroy(sandbox);
    if (i >= WARMUP) {
      starts.push(started);
      teardowns.push(gone);
    }
  }
  return [
    { what: `create → init ready, network ${network}`, stats: stats(starts) },
    { what: `destroy, network ${network}`, stats: stats(teardowns) },
  ];
}

/** `n` restarts of one live sandbox (a phase switch: every process ended, a new init), each checked by an exec. */
async function benchRestarts(backend: Backend, n: number): Promise<Row> {
  progress(`${n} restarts of one ${backend.name} sandbox`);
  const [sandbox] = await create(backend, spec('off'));
  try {
    return {
      what: 'restart (all processes ended, new init) + exec /bin/true',
      stats: await repeat(n, 2, async () => (await timed(async () => (await sandbox.restart(), await run(sandbox, ['/bin/true']))))[1]),
    };
  } finally {
    await destroy(sandbox);
  }
}

async function benchExecs(backend: Backend): Promise<Row[]> {
  progress(`${EXECS} execs of each command in one sandbox`);
  const [sandbox] = await create(backend, spec('off'));
  try {
    const execOnce = (argv: string[], expect: string) => async (): Promise<number> => {
      const [out, took] = await timed(() => run(sandbox, argv));
      if (out !== expect) throw new Error(`${argv.join(' ')} printed ${JSON.stringify(out)}`);
      return took;
    };
    return [
      { what: 'exec /bin/true', stats: await repeat(EXECS, EXEC_WARMUP, execOnce(['/bin/true'], '')) },
      { what: "exec /bin/sh -c 'echo hi'", stats: await repeat(EXECS, EXEC_WARMUP, execOnce(['/bin/sh', '-c', 'echo hi'], 'hi\n')) },
    ];
  } finally {
    await destroy(sandbox);
  }
}

// ---------------------------------------------------------------------------
// Provisioning a repository

interface Repo {
  url: string;
  head: string;
  files: number;
  size: string;
}

function gitAsync(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { env: GIT_ENV }, (error, _stdout, stderr) => (error ? reject(new Error(`git ${args.join(' ')}: ${stderr}`)) : resolve()));
  });
}

/** A bare repository of FILES small files in DIRS directories, one commit. */
function makeRepo(dir: string): Repo {
  progress(`making a ${FILES}-file repository`);
  const work = join(dir, 'work');
  mkdirSync(work, { recursive: true });
  const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
  git(work, 'init', '--quiet', '--initial-branch=main');
  for (let i = 0; i < FILES; i++) {
    const sub = join(work, `pkg${String(i % DIRS).padStart(2, '0')}`);
    if (i < DIRS) mkdirSync(sub);
    const body = Array.from({ length: 8 }, (_, line) => `export const value${line} = ${i * 8 + line}; // file ${i}, line ${line}\n`).join('');
    writeFileSync(join(sub, `mod${String(i).padStart(5, '0')}.ts`), body);
  }
  git(work, 'add', '--all');
  git(work, '-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', 'commit', '--quiet', '-m', `${FILES} files`);
  const bare = join(dir, 'repo.git');
  git(dir, 'clone', '--bare', '--quiet', work, bare);
  // Packed, as a hosted upstream would be.
  git(bare, 'repack', '-a', '-d', '-q');
  rmSync(work, { recursive: true, force: true });
  return {
    url: pathToFileURL(bare).href,
    head: git(bare, 'rev-parse', 'HEAD'),
    files: git(bare, 'ls-tree', '-r', '--name-only', 'HEAD').split('\n').length,
    size: command('du', ['-sh', bare]).split('\t')[0] ?? '?',
  };
}

interface Provisioning {
  mirror: number;
  start: number;
  clone: number;
  total: number;
  destroy: number;
}

/** One run's provisioning: fetch the mirror, start a sandbox with it bound in, clone inside. */
async function provision(backend: Backend, mirrors: MirrorModule.MirrorCache, repo: Repo): Promise<Provisioning> {
  const [mirrorPath, mirror] = await timed(() => mirrors.ensure(TEAM, repo.url));
  const [sandbox, start] = await create(backend, spec('off', [mirrorPath]));
  try {
    const [, clone] = await timed(() =>
      setUpWorkspace({
        sandbox,
        repos: [{ url: repo.url }],
        setupCommands: [],
        env: { ...EXEC_ENV, HOME: '/workspace' },
        emit: () => {},
        output: () => {},
        stopped: () => false,
        redactor: new Redactor([]),
      }),
    );
    // Check the checkout (not timed).
    const head = (await run(sandbox, ['git', 'rev-parse', 'HEAD'], 'repo')).trim();
    const files = (await run(sandbox, ['git', 'ls-files'], 'repo')).trim().split('\n').length;
    if (head !== repo.head || files !== repo.files) throw new Error(`checkout: HEAD ${head}, ${files} files; expected ${repo.head}, ${repo.files}`);
    return { mirror, start, clone, total: mirror + start + clone, destroy: await destroy(sandbox) };
  } finally {
    if (live.has(sandbox)) await destroy(sandbox);
  }
}

interface ProvisioningResult {
  repo: Repo;
  first: Provisioning[];
  second: Provisioning[];
  /** The same clone as in the sandbox, by host git on the same filesystem, for comparison. */
  hostClone: number[];
}

async function benchProvisioning(backend: Backend, dir: string): Promise<ProvisioningResult> {
  const repo = makeRepo(join(dir, 'repos'));
  progress(`repository: ${repo.files} files, ${repo.size}; ${FIRST} first provisionings (fresh cache each)`);
  const first: Provisioning[] = [];
  let cacheDir = '';
  for (let i = 0; i < FIRST; i++) {
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
    cacheDir = join(dir, `cache-${i}`);
    first.push(await provision(backend, new MirrorCache(cacheDir, [join(dir, 'repos')]), repo));
  }
  progress(`${SECOND} second provisionings (mirror cached)`);
  const second: Provisioning[] = [];
  const mirrors = new MirrorCache(cacheDir || join(dir, 'cache-0'), [join(dir, 'repos')]);
  if (!cacheDir) await mirrors.ensure(TEAM, repo.url);
  for (let i = 0; i < SECOND; i++) second.push(await provision(backend, mirrors, repo));

  progress(`${SECOND} host-side clones of the mirror (no sandbox)`);
  const mirrorPath = await mirrors.ensure(TEAM, repo.url);
  const hostClone: number[] = [];
  for (let i = 0; i < SECOND; i++) {
    const dest = join(dir, 'host-clone');
    hostClone.push((await timed(() => gitAsync(['clone', '--quiet', '--no-hardlinks', '--', mirrorPath, dest])))[1]);
    rmSync(dest, { recursive: true, force: true });
  }
  return { repo, first, second, hostClone };
}

// ---------------------------------------------------------------------------
// Main

function statRows(rows: Row[]): string[][] {
  return rows.map((r) => [r.what, String(r.stats.n), ms(r.stats.p50), ms(r.stats.p95), ms(r.stats.min), ms(r.stats.max)]);
}

const STAT_HEADER = ['what', 'n', 'p50 ms', 'p95 ms', 'min ms', 'max ms'];
const STAT_ALIGN = [false, true, true, true, true, true];

function provisioningRows(label: string, samples: Provisioning[]): string[][] {
  const parts: Array<[string, (p: Provisioning) => number]> = [
    ['mirror (clone --mirror / fetch)', (p) => p.mirror],
    ['sandbox start (mirror bound)', (p) => p.start],
    ['clone inside the sandbox', (p) => p.clone],
    ['total', (p) => p.total],
    ['destroy (not in total)', (p) => p.destroy],
  ];
  return parts.map(([what, get]) => {
    const s = stats(samples.map(get));
    return [label, what, String(s.n), ms(s.p50), ms(s.p95), ms(s.min), ms(s.max)];
  });
}

async function main(): Promise<number> {
  guard(WATCHDOG_MS);

  const t0 = performance.now();
  const [loadAtStart = NaN] = loadavg();
  const out: string[] = [];
  let failed = false;
  try {
    const dir = mkdtempSync(join(ROOT, 'oz-bench-sandbox-'));
    onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    // The sandboxes' uids must be able to reach the mirrors and their run directories.
    chmodSync(dir, 0o711);
    const backend = await BwrapBackend.open({ root: join(dir, 'sandboxes') });
    onCleanup('close the backend', () => backend.close());
    onCleanup('destroy live sandboxes', async () => {
      for (const sandbox of live) await sandbox.destroy();
      live.clear();
    });

    out.push(
      `Sandbox benchmark (bench/sandbox/run.ts) — Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ` +
        `kernel ${release()}, ${command('bwrap', ['--version'])}, ${command('git', ['--version'])}`,
    );
    out.push(`  limits enforced by: ${backend.enforcement}; run as uid ${process.getuid?.() ?? '?'}`);
    out.push(`  temp directory (workspaces, mirrors): ${dir} on ${command('stat', ['-f', '-c', '%T', dir])}`, '');

    const baselines = await benchBaselines();
    out.push(table(`Bare process start on the host (spawn until exit and stdio closed)`, STAT_HEADER, statRows(baselines), STAT_ALIGN), '');

    const sandboxRows = await lifecycle(backend, 'off', SANDBOXES);
    if (NET_SANDBOXES > 0) {
      try {
        sandboxRows.push(...(await lifecycle(backend, 'on', NET_SANDBOXES)));
      } catch (error) {
        out.push(`network "on": not measured (${(error as Error).message})`);
      }
    }
    out.push(table(`Sandbox start and teardown (sequential, ${WARMUP} warm-up each, no mounts)`, STAT_HEADER, statRows(sandboxRows), STAT_ALIGN), '');

    out.push(table('Exec in a live sandbox (through the init, until exit and output read)', STAT_HEADER, statRows(await benchExecs(backend)), STAT_ALIGN), '');

    if (DOCKER_SANDBOXES > 0) {
      try {
        const docker = await DockerBackend.open({ root: join(dir, 'containers') });
        onCleanup('close the docker backend', () => docker.close());
        out.push(`  docker: ${docker.enforcement}`);
        const bwrapRows = [...(await lifecycle(backend, 'off', DOCKER_SANDBOXES)), ...(await benchExecs(backend)), await benchRestarts(backend, RESTARTS)];
        const dockerRows = [...(await lifecycle(docker, 'off', DOCKER_SANDBOXES)), ...(await benchExecs(docker)), await benchRestarts(docker, RESTARTS)];
        out.push(
          table(
            `bwrap and docker in the same run (${DOCKER_SANDBOXES} sandboxes each, ${EXECS} execs, ${RESTARTS} restarts; no image: the host's system)`,
            ['what', 'bwrap p50 ms', 'bwrap p95 ms', 'docker p50 ms', 'docker p95 ms', 'docker / bwrap (p50)'],
            bwrapRows.map((row, i) => {
              const other = (dockerRows[i] as Row).stats;
              return [row.what, ms(row.stats.p50), ms(row.stats.p95), ms(other.p50), ms(other.p95), `${(other.p50 / row.stats.p50).toFixed(1)}×`];
            }),
            [false, true, true, true, true, true],
          ),
          '',
        );
      } catch (error) {
        out.push(`docker: not measured (${(error as Error).message})`, '');
      }
    }

    const { repo, first, second, hostClone } = await benchProvisioning(backend, dir);
    const host = stats(hostClone);
    out.push(
      table(
        `Provisioning a ${repo.files}-file repository (bare ${repo.size}): first = empty mirror cache, second = mirror cached`,
        ['run', 'part', 'n', 'p50 ms', 'p95 ms', 'min ms', 'max ms'],
        [
          ...provisioningRows('first', first),
          ...provisioningRows('second', second),
          ['host', 'git clone of the mirror, no sandbox', String(host.n), ms(host.p50), ms(host.p95), ms(host.min), ms(host.max)],
        ],
        [false, false, true, true, true, true, true],
      ),
      '',
    );
    // Run directories only: the backend's own `staged/` (tools it bound) lives as long as the backend.
    const left = readdirSync(join(dir, 'sandboxes')).flatMap((w) => readdirSync(join(dir, 'sandboxes', w)).filter((name) => name.startsWith('run-')));
    if (left.length > 0) out.push(`note: run directories left after destroy: ${left.join(', ')}`);
  } catch (error) {
    failed = true;
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await runCleanups();
  }
  const [loadAtEnd = NaN] = loadavg();
  out.push(`Total time ${((performance.now() - t0) / 1000).toFixed(0)} s. 1-minute load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end.`);
  console.log(`\n${out.join('\n')}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
