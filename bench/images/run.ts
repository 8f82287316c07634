/**
 * Images benchmark: what an environment's image costs a run on the bubblewrap
 * backend — pulling it into the worker's image store (cold, cached, and a
 * second image on the same base layers), and starting a sandbox on its root
 * against one on the host's system, measured in the same run.
 *
 *   npm run build && npm run bench:images      # tsx bench/images/run.ts
 *
 * The code under test is loaded from the built dist/ (the backend finds the
 * sandbox init there). Needs root (an image root is an idmapped mount and an
 * overlay), bwrap, skopeo, umoci, docker-registry, patchelf and a static
 * busybox (busybox-static). The images are made here with umoci (no Docker)
 * and pushed to a private docker-registry on 127.0.0.1:
 *
 *   busybox  a static busybox (test/support/busybox-image.ts), one layer;
 *   big      busybox + a layer of OZ_BENCH_DATA_FILES files (3,000) holding
 *            OZ_BENCH_DATA_MB MiB (64) of hex text (gzip halves it);
 *   app      big + a small layer of its own (200 files, 2 MiB).
 *
 * Everything lives in one temp directory under os.tmpdir() (0711, as the
 * sandboxes' uids must reach their run directories): the layout, the
 * registry's storage, the image stores and the backend's sandbox root. At the
 * end (also on SIGINT/SIGTERM) every sandbox is destroyed, the backend closed,
 * the registry killed by its PID and the directory removed.
 *
 * Sizes: OZ_BENCH_PULLS (3 cold pulls, each into a fresh store),
 * OZ_BENCH_CACHED (20), OZ_BENCH_STARTS (30 per root), OZ_BENCH_RELAUNCHES (20),
 * OZ_BENCH_MOUNTS (30); OZ_BENCH_ROOT puts the temp directory elsewhere.
 * Percentiles are nearest-rank. Results are written to docs/benchmarks.md by hand.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { Sandbox, SandboxImage, SandboxSpec } from '../../src/sandbox/sandbox-backend.js';
import type * as BwrapModule from '../../src/sandbox/bwrap/bwrap-backend.js';
import type * as DiskModule from '../../src/sandbox/bwrap/run-disk.js';
import type * as IdmapModule from '../../src/sandbox/bwrap/idmapped-mount.js';
import type * as ImageRootModule from '../../src/sandbox/bwrap/image-root.js';
import type * as ReapModule from '../../src/sandbox/reap.js';
import type * as StoreModule from '../../src/worker/images/image-store.js';
import { buildBusyboxImage, busyboxImageMissing } from '../../test/support/busybox-image.js';
import { imageToolsMissing, push, TestRegistry } from '../../test/worker/images/registry-fixture.js';
import { guard, intFromEnv, ms, onCleanup, progress, runCleanups, table, command, fromDist } from '../support.js';

// ---------------------------------------------------------------------------
// Parameters

const PULLS = intFromEnv('OZ_BENCH_PULLS', 3);
const CACHED = intFromEnv('OZ_BENCH_CACHED', 20);
const STARTS = intFromEnv('OZ_BENCH_STARTS', 30);
const RELAUNCHES = intFromEnv('OZ_BENCH_RELAUNCHES', 20);
const MOUNTS = intFromEnv('OZ_BENCH_MOUNTS', 30);
const DATA_FILES = intFromEnv('OZ_BENCH_DATA_FILES', 3_000);
const DATA_MB = intFromEnv('OZ_BENCH_DATA_MB', 64);
const APP_FILES = 200;
const APP_MB = 2;
const ROOT = process.env.OZ_BENCH_ROOT || tmpdir();
const WARMUP = 3;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const LIMITS = { pids: 1024, memoryBytes: 4 * GiB, diskBytes: 10 * GiB };
const EXEC_ENV = { PATH: '/usr/bin:/bin' };
/** The in-sandbox user of the busybox images (`dev`). */
const AGENT = { agentUid: 1000, agentGid: 1000 };
/** The backend's sandbox uids start here (src/sandbox/bwrap); the direct mount baseline takes one of its own from the same range. */
const UID_BASE = 1_900_000_000;
/** Hard stop: a run takes about a minute and a half; this only catches a hang. */
const WATCHDOG_MS = 8 * 60_000;

// ---------------------------------------------------------------------------
// Small helpers

interface Stats {
  n: number;
  p50: number;
  p90: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles (as bench/support.ts; p90 rather than p95, the samples being few). */
function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
  return { n: sorted.length, p50: rank(0.5), p90: rank(0.9), min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN };
}

const ratio = (a: number, b: number): string => {
  if (!(b > 0)) return '–';
  const r = a / b;
  return `${r < 10 ? r.toFixed(2) : r < 100 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US')}×`;
};

/**
 * Aborted by the first cleanup (an interrupt, the watchdog): pulls and the
 * tools run by hand are killed, and no further step starts, so nothing
 * writes into the temp directory while it is removed.
 */
const stop = new AbortController();
/** Steps under way, which that cleanup waits for. */
const inFlight = new Set<Promise<unknown>>();

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  stop.signal.throwIfAborted();
  const t0 = performance.now();
  const step = fn();
  inFlight.add(step);
  try {
    const value = await step;
    return [value, performance.now() - t0];
  } finally {
    inFlight.delete(step);
  }
}

const runAsync = promisify(execFile);

/** Megabytes used under `path` (du -sm). */
function megabytes(path: string): string {
  return command('du', ['-sm', path]).split('\t')[0] ?? '?';
}

const { BwrapBackend } = await fromDist<typeof BwrapModule>('sandbox/bwrap/bwrap-backend.js');
const { ImageStore } = await fromDist<typeof StoreModule>('worker/images/image-store.js');

const { mountRunLayers } = await fromDist<typeof ImageRootModule>('sandbox/bwrap/image-root.js');
const { idmappedBind } = await fromDist<typeof IdmapModule>('sandbox/bwrap/idmapped-mount.js');
const { ImageDisks } = await fromDist<typeof DiskModule>('sandbox/bwrap/run-disk.js');
const { mountsUnder, unmount } = await fromDist<typeof ReapModule>('sandbox/reap.js');
type Backend = BwrapModule.BwrapBackend;
type EnsuredImage = StoreModule.StoredImage;

// ---------------------------------------------------------------------------
// The images

interface Images {
  layout: string;
  /** Compressed layer sizes in the layout, MiB, by tag. */
  layers: Record<string, number[]>;
}

/** `count` files of hex text holding `bytes` in all, under `dir` (sizes from 1/4 to 7/4 of the mean, 30 per directory). */
function writeData(dir: string, count: number, bytes: number): void {
  const mean = bytes / count;
  const sizes = Array.from({ length: count }, (_, i) => Math.round(mean * (0.25 + (1.5 * (i % 7)) / 6)));
  const scale = bytes / sizes.reduce((a, b) => a + b, 0);
  // Random bytes as hex: text that gzip compresses to about half, as source and binaries roughly do.
  const pool = randomBytes(Math.ceil(bytes / 2) + 1024).toString('hex');
  let at = 0;
  for (let i = 0; i < count; i++) {
    const size = Math.max(1, Math.round((sizes[i] ?? 1) * scale));
    const sub = join(dir, `d${String(Math.floor(i / 30)).padStart(3, '0')}`);
    if (i % 30 === 0) mkdirSync(sub, { recursive: true });
    if (at + size > pool.length) at = 0;
    writeFileSync(join(sub, `f${String(i).padStart(5, '0')}.txt`), pool.slice(at, at + size));
    at += size;
  }
}

function umoci(...args: string[]): void {
  execFileSync('umoci', args, { stdio: 'pipe' });
}

/** The compressed layer sizes of `layout:tag`, MiB. */
function layerSizes(layout: string, tag: string): number[] {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no tag ${tag} in ${layout}`);
  const blob = (digest: string): string => join(layout, 'blobs', ...digest.split(':'));
  const manifest = JSON.parse(readFileSync(blob(entry.digest), 'utf8')) as { layers: { size: number }[] };
  return manifest.layers.map((layer) => layer.size / MiB);
}

/** busybox (tag t), big (t + data layer) and app (big + own layer), in one umoci layout. */
function buildImages(dir: string): Images {
  progress(`building the images (busybox; + ${DATA_FILES} files / ${DATA_MB} MiB; + ${APP_FILES} files / ${APP_MB} MiB)`);
  const { reference } = buildBusyboxImage(join(dir, 'busybox'));
  const layout = reference.slice(0, -':t'.length);
  const layer = (from: string, to: string, files: number, mb: number, under: string): void => {
    const bundle = join(dir, `bundle-${to}`);
    umoci('unpack', '--rootless', '--image', `${layout}:${from}`, bundle);
    writeData(join(bundle, 'rootfs', ...under.split('/')), files, mb * MiB);
    umoci('repack', '--image', `${layout}:${to}`, bundle);
    rmSync(bundle, { recursive: true, force: true });
  };
  layer('t', 'big', DATA_FILES, DATA_MB, 'opt/data');
  layer('big', 'app', APP_FILES, APP_MB, 'app');
  umoci('gc', '--layout', layout);
  return { layout, layers: { t: layerSizes(layout, 't'), big: layerSizes(layout, 'big'), app: layerSizes(layout, 'app') } };
}

// ---------------------------------------------------------------------------
// Pulls

interface Access {
  manifests: number;
  blobs: number;
  /** Bytes of blob bodies the registry sent. */
  blobBytes: number;
}

/** What the registry served, from its access log, a stretch at a time. */
class RegistryLog {
  private seen = 0;
  constructor(private readonly file: string) {}

  /** Requests logged since the previous call. */
  take(): Access {
    const lines = readFileSync(this.file, 'utf8').split('\n');
    const fresh = lines.slice(this.seen);
    this.seen = lines.length - 1;
    const access: Access = { manifests: 0, blobs: 0, blobBytes: 0 };
    for (const line of fresh) {
      // The access log: ... "GET /v2/<name>/blobs/sha256:… HTTP/1.1" 200 <bytes> ...
      const match = /"(GET|HEAD) \/v2\/\S+\/(manifests|blobs)\/\S+ HTTP\/[\d.]+" (\d+) (\d+)/.exec(line);
      if (!match) continue;
      if (match[2] === 'manifests') access.manifests++;
      else if (match[1] === 'GET' && match[3] === '200') {
        access.blobs++;
        access.blobBytes += Number(match[4]);
      }
    }
    return access;
  }
}

interface PullResult {
  /** Cold store: the small busybox image. */
  coldSmall: number[];
  /** Cold store: the big image. */
  cold: number[];
  /** The big image again, same store. */
  cached: number[];
  /** The big image, a new ImageStore on the same cache directory (a restarted worker). */
  reopened: number[];
  /** The app image into a store that has big (shares its two layers). */
  shared: number[];
  /** What the registry served for each kind, in the last trial. */
  access: Record<'coldSmall' | 'cold' | 'cached' | 'shared', Access>;
  /** The store's two tools run by hand on big (plain flags, no store around them), for what dominates. */
  skopeo: number[];
  umoci: number[];
  /** Sizes in the last trial's store, MB. */
  blobsMb: string;
  rootsMb: string;
  /** The last trial's store, kept for the sandboxes. */
  busybox: EnsuredImage;
  big: EnsuredImage;
}

async function benchPulls(dir: string, log: RegistryLog, refs: Record<'busybox' | 'big' | 'app', string>): Promise<PullResult> {
  const result: Omit<PullResult, 'busybox' | 'big' | 'access' | 'blobsMb' | 'rootsMb'> = { coldSmall: [], cold: [], cached: [], reopened: [], shared: [], skopeo: [], umoci: [] };
  let access: PullResult['access'] | null = null;
  let kept: { busybox: EnsuredImage; big: EnsuredImage; cache: string } | null = null;
  for (let trial = 0; trial < PULLS; trial++) {
    progress(`pull trial ${trial + 1}/${PULLS}: busybox and big cold, big cached ×${CACHED}, app on big's layers`);
    const last = trial === PULLS - 1;
    // The busybox image alone, in its own cold store.
    const smallCache = join(dir, `store-small-${trial}`);
    log.take();
    const [, coldSmall] = await timed(() => new ImageStore(smallCache).ensure(refs.busybox, { signal: stop.signal }));
    result.coldSmall.push(coldSmall);
    const coldSmallAccess = log.take();

    const cache = join(dir, `store-${trial}`);
    const store = new ImageStore(cache);
    const [big, cold] = await timed(() => store.ensure(refs.big, { signal: stop.signal }));
    result.cold.push(cold);
    const coldAccess = log.take();

    for (let i = 0; i < CACHED; i++) {
      const [again, took] = await timed(() => store.ensure(refs.big, { signal: stop.signal }));
      if (again.digest !== big.digest || again.rootDir !== big.rootDir) throw new Error('a cached ensure gave another image');
      result.cached.push(took);
      result.reopened.push((await timed(() => new ImageStore(cache).ensure(refs.big, { signal: stop.signal })))[1]);
    }
    const cachedAccess = log.take();
    if (cachedAccess.manifests + cachedAccess.blobs > 0) throw new Error(`a cached ensure reached the registry: ${JSON.stringify(cachedAccess)}`);

    const [app, shared] = await timed(() => store.ensure(refs.app, { signal: stop.signal }));
    result.shared.push(shared);
    const sharedAccess = log.take();
    if (app.digest === big.digest) throw new Error('app and big have the same digest');

    // The same skopeo copy and umoci unpack by hand, without the store (no cgroup, no prlimit), into an empty directory.
    const manual = join(dir, `manual-${trial}`);
    mkdirSync(manual);
    const [, skopeo] = await timed(() =>
      runAsync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${refs.big}`, `oci:${join(manual, 'layout')}:image`], {
        signal: stop.signal,
      }),
    );
    result.skopeo.push(skopeo);
    const [, unpack] = await timed(() =>
      runAsync('umoci', ['raw', 'unpack', '--rootless', '--image', `${join(manual, 'layout')}:image`, join(manual, 'root')], { signal: stop.signal }),
    );
    result.umoci.push(unpack);
    log.take();
    rmSync(manual, { recursive: true, force: true });
    rmSync(smallCache, { recursive: true, force: true });

    if (last) {
      access = { coldSmall: coldSmallAccess, cold: coldAccess, cached: cachedAccess, shared: sharedAccess };
      kept = { busybox: (await timed(() => new ImageStore(join(dir, 'store-kept')).ensure(refs.busybox, { signal: stop.signal })))[0], big, cache };
    } else {
      rmSync(cache, { recursive: true, force: true });
    }
  }
  if (!access || !kept) throw new Error('no pull trial ran');
  return {
    ...result,
    access,
    blobsMb: megabytes(join(kept.cache, 'images', 'blobs')),
    rootsMb: megabytes(join(kept.cache, 'images', 'roots')),
    busybox: kept.busybox,
    big: kept.big,
  };
}

// ---------------------------------------------------------------------------
// Sandboxes

/** Sandboxes not destroyed yet, so an interrupt can still destroy them. */
const live = new Set<Sandbox>();
let runs = 0;

function spec(image: SandboxImage | undefined, phase: SandboxSpec['phase'] = 'agent'): SandboxSpec {
  return {
    runId: `bench${++runs}`,
    network: 'off',
    limits: LIMITS,
    mounts: [],
    onLimit: (kind) => console.error(`bench: sandbox hit its ${kind} limit`),
    ...(image ? { image } : {}),
    phase,
  };
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

async function run(sandbox: Sandbox, argv: string[]): Promise<string> {
  let out = '';
  const result = await sandbox.exec(argv, { env: EXEC_ENV, onOutput: (_stream, chunk) => (out += chunk.toString()) });
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} in the sandbox: exit ${result.exitCode} ${result.signal ?? ''}: ${out.trim()}`);
  return out;
}

interface Root {
  name: string;
  image: SandboxImage | undefined;
}

interface StartSamples {
  create: number[];
  exec: number[];
  destroy: number[];
  total: number[];
}

/** The first sandbox on an image: the backend copies and patches its node then (once per worker). */
async function firstImageSandbox(backend: Backend, image: SandboxImage): Promise<{ create: number; osRelease: string }> {
  const [sandbox, took] = await create(backend, spec(image));
  try {
    return { create: took, osRelease: (await run(sandbox, ['/bin/cat', '/etc/os-release'])).split('\n')[0] ?? '' };
  } finally {
    await destroy(sandbox);
  }
}

/** create → exec /bin/true → destroy, STARTS times per root, the roots taking turns (so drift hits all alike). */
async function benchStarts(backend: Backend, roots: Root[]): Promise<Map<string, StartSamples>> {
  progress(`${STARTS} sandbox starts per root (${roots.map((r) => r.name).join(', ')}), ${WARMUP} warm-up each`);
  const samples = new Map<string, StartSamples>(roots.map((r) => [r.name, { create: [], exec: [], destroy: [], total: [] }]));
  for (let i = 0; i < WARMUP + STARTS; i++) {
    // Rotate which root goes first.
    for (let j = 0; j < roots.length; j++) {
      const root = roots[(i + j) % roots.length] as Root;
      const t0 = performance.now();
      const [sandbox, created] = await create(backend, spec(root.image));
      const [, exec] = await timed(() => run(sandbox, ['/bin/true']));
      const gone = await destroy(sandbox);
      const total = performance.now() - t0;
      if (i < WARMUP) continue;
      const s = samples.get(root.name) as StartSamples;
      s.create.push(created);
      s.exec.push(exec);
      s.destroy.push(gone);
      s.total.push(total);
    }
  }
  return samples;
}

/**
 * Relaunches in one live sandbox: on an image, `enter` alternating setup and
 * agent (another user: the jail is stopped and started again, as a run on an
 * image does between its phases); on the host, `restart` (what a run pays to
 * drop setup-only secrets). Each followed by an exec, timed with it.
 */
async function benchRelaunches(backend: Backend, root: Root): Promise<number[]> {
  const [sandbox] = await create(backend, spec(root.image, root.image ? 'setup' : 'agent'));
  try {
    const samples: number[] = [];
    for (let i = 0; i < WARMUP + RELAUNCHES; i++) {
      const [, took] = await timed(async () => {
        if (root.image) {
          if (!(await sandbox.enter(i % 2 === 0 ? 'agent' : 'setup'))) throw new Error('enter did not relaunch');
        } else {
          await sandbox.restart();
        }
        await run(sandbox, ['/bin/true']);
      });
      if (i >= WARMUP) samples.push(took);
    }
    return samples;
  } finally {
    await destroy(sandbox);
  }
}

interface Pieces {
  disk: number[];
  diskRemove: number[];
  idmap: number[];
  both: number[];
  remove: number[];
}

function which(tool: string): string {
  const path = command('sh', ['-c', `PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v ${tool}`]);
  if (path === '?' || path === '') throw new Error(`${tool} is not installed`);
  return path;
}

/**
 * What the backend mounts per run, by hand with its own functions (from
 * dist/): the run's ext4 file system (every sandbox, host or image, when loop
 * devices work), then on it the image root's idmapped bind alone, and the
 * bind + overlay (mountImageRoot, or mountRunLayers), each unmounted after.
 */
async function benchPieces(dir: string, imageRoot: string, withDisk: boolean): Promise<Pieces> {
  progress(`${MOUNTS} per-run mounts by hand (${withDisk ? 'ext4 disk, ' : ''}idmapped bind, + overlay)`);
  const tools = { mount: which('mount'), umount: which('umount'), unshare: which('unshare') };
  const disks = withDisk ? new ImageDisks({ mkfs: which('mkfs.ext4'), mount: tools.mount, umount: tools.umount }) : null;
  const uid = UID_BASE + 100_000_000 + randomInt(1_000_000);
  const out: Pieces = { disk: [], diskRemove: [], idmap: [], both: [], remove: [] };
  for (let i = 0; i < WARMUP + MOUNTS; i++) {
    const runDir = join(dir, `mount-${i}`);
    mkdirSync(runDir, { mode: 0o700 });
    try {
      const [disk, made] = disks ? await timed(() => disks.create(runDir, uid, LIMITS.diskBytes)) : [null, NaN];
      const layers = disk ?? { workspace: join(runDir, 'workspace'), layer: join(runDir, 'layer') };
      const target = join(runDir, 'idmap');
      mkdirSync(target);
      const [, idmap] = await timed(() => idmappedBind([{ source: imageRoot, target }], uid, tools.unshare));
      execFileSync(tools.umount, [target]);
      const [mounted, both] = await timed(() => mountRunLayers({ runDir, imageRoot, restored: null, disk: layers, uid, tools }));
      if (!mounted.root || !existsSync(join(mounted.root, 'bin', 'busybox'))) throw new Error('the overlay does not show the image');
      const [, remove] = await timed(async () => mounted.remove());
      const [, diskRemove] = disk ? await timed(() => disk.remove()) : [null, NaN];
      if (i >= WARMUP) {
        if (disk) {
          out.disk.push(made);
          out.diskRemove.push(diskRemove);
        }
        out.idmap.push(idmap);
        out.both.push(both);
        out.remove.push(remove);
      }
    } finally {
      // Never remove across a mount (an interrupt between two steps): unmount what is left, deepest first.
      for (const point of mountsUnder(runDir)) unmount(point, tools.umount);
      if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Main

const HEADER = ['what', 'n', 'p50 ms', 'p90 ms', 'min ms', 'max ms'];
const ALIGN = [false, true, true, true, true, true];
const row = (what: string, samples: number[]): string[] => {
  const s = stats(samples);
  return [what, String(s.n), ms(s.p50), ms(s.p90), ms(s.min), ms(s.max)];
};
const p50 = (samples: number[]): number => stats(samples).p50;
const p90 = (samples: number[]): number => stats(samples).p90;
const accessText = (a: Access): string => `${a.manifests} manifest, ${a.blobs} blob requests, ${(a.blobBytes / MiB).toFixed(1)} MiB`;

async function main(): Promise<number> {
  guard(WATCHDOG_MS);
  const t0 = performance.now();
  const [loadAtStart = NaN] = loadavg();
  const out: string[] = [];
  let failed = false;
  try {
    if (process.getuid?.() !== 0) throw new Error('run as root: a sandbox on an image needs an idmapped mount and an overlay');
    const missing = busyboxImageMissing() ?? imageToolsMissing();
    if (missing) throw new Error(missing);

    const dir = mkdtempSync(join(ROOT, 'oz-bench-images-'));
    onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o711);

    const images = buildImages(join(dir, 'build'));
    const registry = await TestRegistry.start(join(dir, 'registry'));
    onCleanup('stop the registry', () => registry.stop());
    const refs = { busybox: `${registry.address}/bench/busybox:1`, big: `${registry.address}/bench/big:1`, app: `${registry.address}/bench/app:1` };
    progress(`pushing to ${registry.address}`);
    push(`${images.layout}:t`, refs.busybox);
    push(`${images.layout}:big`, refs.big);
    push(`${images.layout}:app`, refs.app);
    const log = new RegistryLog(join(dir, 'registry', 'registry.log'));

    const backend = await BwrapBackend.open({ root: join(dir, 'sandboxes') });
    onCleanup('close the backend', () => backend.close());
    onCleanup('destroy live sandboxes', async () => {
      for (const sandbox of live) await sandbox.destroy();
      live.clear();
    });
    onCleanup('stop the steps under way', async () => {
      stop.abort();
      await Promise.allSettled([...inFlight]);
    });
    if (!backend.runsImages) throw new Error(`the backend cannot start sandboxes on images here: ${backend.imagesUnavailable}`);

    const layers = (tag: string): string => (images.layers[tag] ?? []).map((size) => size.toFixed(2)).join(' + ');
    out.push(
      `Images benchmark (bench/images/run.ts) — Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), kernel ${release()}, ` +
        `${command('bwrap', ['--version'])}, ${command('skopeo', ['--version'])}, ${command('umoci', ['--version'])}`,
      `  limits enforced by: ${backend.enforcement}`,
      `  temp directory: ${dir} on ${command('stat', ['-f', '-c', '%T', dir])}; registry: docker-registry on ${registry.address}`,
      `  images (compressed layers, MiB): busybox ${layers('t')}; big ${layers('big')} (${DATA_FILES} files, ${DATA_MB} MiB); app ${layers('app')}`,
      '',
    );

    // 1. Pulls.
    const pulls = await benchPulls(dir, log, refs);
    out.push(
      table(
        `Image store: ensure(reference) (${PULLS} trials; a cold pull into a fresh store each)`,
        HEADER,
        [
          row('busybox, cold store', pulls.coldSmall),
          row('big, cold store', pulls.cold),
          row('big, cached (same store)', pulls.cached),
          row('big, cached (new ImageStore, same directory)', pulls.reopened),
          row("app, store has big's layers", pulls.shared),
          row('by hand: skopeo copy of big (no store)', pulls.skopeo),
          row('by hand: umoci raw unpack of big', pulls.umoci),
        ],
        ALIGN,
      ),
      `  ratios (p50): big cold / cached ${ratio(p50(pulls.cold), p50(pulls.cached))}; cold / cached with a new store ${ratio(p50(pulls.cold), p50(pulls.reopened))}; ` +
        `app on big's layers / big cold ${ratio(p50(pulls.shared), p50(pulls.cold))}; busybox cold / big cold ${ratio(p50(pulls.coldSmall), p50(pulls.cold))}`,
      `  registry, last trial: busybox cold ${accessText(pulls.access.coldSmall)}; big cold ${accessText(pulls.access.cold)}; ` +
        `${CACHED * 2} cached ${accessText(pulls.access.cached)}; app ${accessText(pulls.access.shared)}`,
      `  store after big + app: blobs ${pulls.blobsMb} MB, roots ${pulls.rootsMb} MB (one unpacked root per manifest digest)`,
      '',
    );

    // 2. Sandboxes.
    const first = await firstImageSandbox(backend, { rootDir: pulls.big.rootDir, ...AGENT });
    out.push(`First sandbox on an image (the backend copies and patches its node, once): create ${ms(first.create)} ms; the image says ${first.osRelease}`, '');
    const roots: Root[] = [
      { name: 'host', image: undefined },
      { name: 'busybox', image: { rootDir: pulls.busybox.rootDir, ...AGENT } },
      { name: 'big', image: { rootDir: pulls.big.rootDir, ...AGENT } },
    ];
    const starts = await benchStarts(backend, roots);
    const host = starts.get('host') as StartSamples;
    const startRows = roots.flatMap((root) => {
      const s = starts.get(root.name) as StartSamples;
      const label = root.image ? `image ${root.name}` : 'host system';
      return [
        row(`${label}: create`, s.create),
        row(`${label}: first exec /bin/true`, s.exec),
        row(`${label}: destroy`, s.destroy),
        row(`${label}: create → exec → destroy`, s.total),
      ];
    });
    out.push(table(`Sandbox start on the host's system vs an image root (network off, phase agent, ${WARMUP} warm-up each, roots in turn)`, HEADER, startRows, ALIGN));
    for (const root of roots.filter((r) => r.image)) {
      const s = starts.get(root.name) as StartSamples;
      out.push(
        `  ratios image ${root.name} / host: create → exec → destroy p50 ${ratio(p50(s.total), p50(host.total))}, p90 ${ratio(p90(s.total), p90(host.total))}; ` +
          `create p50 ${ratio(p50(s.create), p50(host.create))}; destroy p50 ${ratio(p50(s.destroy), p50(host.destroy))}`,
      );
    }
    out.push('');

    progress(`${RELAUNCHES} relaunches in a live sandbox, host and image`);
    const hostRelaunch = await benchRelaunches(backend, roots[0] as Root);
    const imageRelaunch = await benchRelaunches(backend, roots[2] as Root);
    const pieces = await benchPieces(dir, pulls.big.rootDir, backend.enforcement.includes('an ext4 file system per run'));
    out.push(
      table(
        'What an image adds, piece by piece',
        HEADER,
        [
          row('host: restart + exec /bin/true', hostRelaunch),
          row('image big: enter setup/agent (relaunch) + exec', imageRelaunch),
          ...(pieces.disk.length > 0
            ? [row(`by hand: the run's ext4 file system (mkfs + loop mount, ${LIMITS.diskBytes / GiB} GiB)`, pieces.disk), row('by hand: unmount it', pieces.diskRemove)]
            : []),
          row('by hand: idmapped bind of the image root', pieces.idmap),
          row(`by hand: idmapped bind + overlay (mountRunLayers)`, pieces.both),
          row('by hand: unmount both', pieces.remove),
        ],
        ALIGN,
      ),
      `  ratio image relaunch / host restart (p50): ${ratio(p50(imageRelaunch), p50(hostRelaunch))}`,
      '',
    );
    const left = readdirSync(join(dir, 'sandboxes')).flatMap((w) => readdirSync(join(dir, 'sandboxes', w)).filter((name) => name.startsWith('run-')));
    if (left.length > 0) out.push(`note: run directories left after destroy: ${left.join(', ')}`);
  } catch (error) {
    failed = true;
    if (stop.signal.aborted) console.error('bench: stopped');
    else console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await runCleanups();
  }
  const [loadAtEnd = NaN] = loadavg();
  out.push(`Total time ${((performance.now() - t0) / 1000).toFixed(0)} s. 1-minute load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end.`);
  console.log(`\n${out.join('\n')}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
