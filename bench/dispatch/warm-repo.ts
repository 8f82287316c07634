/**
 * Dispatch of a warm environment: create → INPROGRESS for an environment with
 * a 5,000-file repository and a warm snapshot of its setup, with spare
 * sandboxes (`OZ_SPARE_SANDBOXES=3`, one per environment it runs) against the
 * same with none (`0`: every run starts its own sandbox), and a run with no
 * repository and no setup on each. Two real servers from dist/ (npm run build
 * first), each with its embedded bwrap worker, as root; runs are sequential,
 * 300 ms apart, and interleaved across the kinds, so load hits them alike. The
 * machine's own fixed costs are measured in the same run: a bare bwrap start
 * and `node -e 0` (the sandbox's init is a Node.js process).
 *
 * The repository is local (file://), so a mirror whose refs match its origin's
 * is not fetched at all; one row pushes a new commit before each run, so its
 * mirror is fetched and the snapshot's checkout moved. A remote repository
 * adds its fetch's round trip to every run, which no row here measures.
 *
 * State times are the server's `state_timestamps`, relative to `created_at`;
 * the client polls every 100 ms, which does not count.
 *
 *   npm run build && npm run bench:dispatch-warm
 *
 * Sizes: OZ_BENCH_RUNS (default 20 of each kind), OZ_BENCH_FILES (default 5000).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeBareRepo } from '../../test/support/git-fixtures.js';
import { startOzServer, type OzServerHandle } from '../../test/support/oz-server-process.js';
import { call, guard, intFromEnv, ms, onCleanup, runCleanups, stats, table } from '../support.js';

const RUNS = intFromEnv('OZ_BENCH_RUNS', 20);
const FILES = intFromEnv('OZ_BENCH_FILES', 5000);
const POLL_MS = 100;
const RUN_TIMEOUT_MS = 60_000;

interface RunItem {
  run_id: string;
  state: string;
  created_at: string;
  state_timestamps: Partial<Record<string, string>>;
  status_message?: unknown;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One run to its end: ms from created_at to INPROGRESS. */
async function timedRun(server: OzServerHandle, environmentId: string): Promise<number> {
  const { run_id: id } = await call<{ run_id: string }>(server, 'POST', '/api/v1/agent/runs', {
    prompt: 'true',
    config: { harness: { type: 'command' }, environment_id: environmentId },
  });
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    await sleep(POLL_MS);
    const run = await call<RunItem>(server, 'GET', `/api/v1/agent/runs/${id}`);
    if (run.state === 'SUCCEEDED') {
      const at = run.state_timestamps.INPROGRESS;
      if (!at) throw new Error(`run ${id}: no INPROGRESS time`);
      return Date.parse(at) - Date.parse(run.created_at);
    }
    if (['FAILED', 'ERROR', 'CANCELLED'].includes(run.state)) throw new Error(`run ${id} ended ${run.state}: ${JSON.stringify(run.status_message)}`);
    if (Date.now() > deadline) throw new Error(`run ${id} did not end in time`);
  }
}

/** Wall-clock ms of `file args…`, p50 of `n`. */
function processStart(n: number, file: string, args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const result = spawnSync(file, args, { stdio: 'ignore' });
    if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed`);
    times.push(performance.now() - started);
  }
  return stats(times).p50;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('warm starts need a root worker: run as root');
  guard(20 * 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'oz-bench-dispatch-warm-'));
  chmodSync(dir, 0o755);
  onCleanup('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const repos = join(dir, 'repos');
  const files: Record<string, string> = { '.gitignore': 'node_modules/\n' };
  for (let i = 0; i < FILES; i++) files[`src/d${i % 50}/f${i}.txt`] = `file ${i}\n`;
  const url = makeBareRepo(repos, 'big-app', files);
  const movingUrl = makeBareRepo(repos, 'moving-app', files);
  const start = async (spares: string): Promise<OzServerHandle> => {
    const server = await startOzServer('sqlite', { args: ['--backend', 'bwrap'], env: { OZ_FILE_REPO_ROOTS: repos, OZ_SPARE_SANDBOXES: spares } });
    onCleanup(`server (spares ${spares})`, async () => void (await server.stop()));
    return server;
  };
  // One spare for each of its three environments (the default, 2, would make them take turns).
  const withSpares = await start('3');
  const without = await start('0');
  // A kind with `push` gets a new commit on its branch before each run (not timed): its
  // mirror must be fetched and its snapshot's checkout moved, as for a busy repository.
  const work = join(repos, 'moving-app-work');
  let pushed = 0;
  const pushCommit = (): void => {
    writeFileSync(join(work, 'src', 'moving.txt'), `commit ${++pushed}\n`);
    for (const args of [
      ['add', '-A'],
      ['commit', '--quiet', '-m', `moving ${pushed}`],
      ['push', '--quiet', join(repos, 'moving-app.git'), 'main'],
    ]) {
      execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', ...args], { cwd: work, stdio: 'ignore' });
    }
  };
  const kinds: { name: string; server: OzServerHandle; env: string; times: number[]; push?: boolean }[] = [];
  for (const [label, server] of [
    ['spares', withSpares],
    ['no spares', without],
  ] as const) {
    const bare = await call<{ uid: string }>(server, 'POST', '/api/v1/agent/environments', { name: 'bare' });
    const warm = await call<{ uid: string }>(server, 'POST', '/api/v1/agent/environments', {
      name: 'big',
      repos: [{ url }],
      setup_commands: ['mkdir -p node_modules/dep && echo 1 > node_modules/dep/index.js'],
    });
    await timedRun(server, warm.uid); // keeps the snapshot
    kinds.push({ name: `${FILES}-file repository, warm snapshot, ${label}`, server, env: warm.uid, times: [] });
    if (label === 'spares') {
      const moving = await call<{ uid: string }>(server, 'POST', '/api/v1/agent/environments', {
        name: 'moving',
        repos: [{ url: movingUrl }],
        setup_commands: ['mkdir -p node_modules/dep && echo 1 > node_modules/dep/index.js'],
      });
      await timedRun(server, moving.uid); // keeps the snapshot
      kinds.push({ name: `the same, a new commit before each run, ${label}`, server, env: moving.uid, times: [], push: true });
    }
    kinds.push({ name: `no repository, no setup, ${label}`, server, env: bare.uid, times: [] });
  }
  for (const kind of kinds) await timedRun(kind.server, kind.env); // the first spare of each
  for (let i = 0; i < RUNS; i++) {
    for (const kind of kinds) {
      if (kind.push) pushCommit();
      kind.times.push(await timedRun(kind.server, kind.env));
      await sleep(300); // a user's next run does not come within the same millisecond
    }
  }
  const bwrap = processStart(20, 'bwrap', ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--', '/bin/true']);
  const node = processStart(20, process.execPath, ['-e', '0']);
  const base = stats(kinds.find((kind) => kind.name.startsWith('no repository'))?.times ?? []).p50;
  const rows = kinds.map((kind) => {
    const s = stats(kind.times);
    return [kind.name, ms(s.p50), ms(s.p95), (s.p50 / base).toFixed(2), (s.p50 / bwrap).toFixed(1), (s.p50 / node).toFixed(2)];
  });
  process.stdout.write(
    `${table(
      `create → INPROGRESS (${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)}, n=${RUNS} each, interleaved)`,
      ['run', 'p50 ms', 'p95 ms', '× no repo (spares)', '× bare bwrap', '× node -e 0'],
      rows,
      [false, true, true, true, true, true],
    )}\nsame run: a bare bwrap start ${ms(bwrap)} ms, node -e 0 ${ms(node)} ms (p50 of 20); git ${execFileSync('git', ['--version'], { encoding: 'utf8' }).trim()}\n`,
  );
}

try {
  await main();
} finally {
  await runCleanups();
}
