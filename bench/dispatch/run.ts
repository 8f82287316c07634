/**
 * Dispatch latency: a trivial `command` run (prompt `true`) sent to an idle
 * embedded worker, on SQLite and on PostgreSQL.
 *
 * The real server runs as a process (test/support/oz-server-process.ts, from
 * dist/, embedded worker). Runs are sequential: each run is created only after
 * the previous one SUCCEEDED, so the worker is idle at every create. State
 * latencies come from the server's own `state_timestamps`, relative to the
 * run's `created_at`, so the client's 10 ms polling does not count. The create
 * round trip (POST /api/v1/agent/runs) is timed by the client.
 *
 *   npx tsx bench/dispatch/run.ts
 *
 * Sizes: OZ_BENCH_WARMUP (default 10), OZ_BENCH_RUNS (default 150).
 * PostgreSQL: OZ_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), loopback only.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { call } from '../support.js';
import { startOzServer, type Backend, type OzServerHandle } from '../../test/support/oz-server-process.js';

const WARMUP = positiveInt('OZ_BENCH_WARMUP', 10);
const RUNS = positiveInt('OZ_BENCH_RUNS', 150);
const PG_URL = process.env.OZ_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const POLL_MS = 10;
const RUN_TIMEOUT_MS = 30_000;
const STATES = ['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS', 'SUCCEEDED'] as const;
type TimedState = (typeof STATES)[number];

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) throw new Error(`refusing non-loopback database host ${host}`);
}

interface Sample {
  /** Client-side POST round trip. */
  createRttMs: number;
  /** ms from the server-side created_at to when each state was entered. */
  at: Record<TimedState, number>;
  /** GETs the client made until it saw SUCCEEDED. */
  polls: number;
}

interface RunItem {
  run_id: string;
  state: string;
  created_at: string;
  state_timestamps: Partial<Record<string, string>>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function oneRun(server: OzServerHandle): Promise<Sample> {
  const started = performance.now();
  const created = await call<{ run_id: string }>(server, 'POST', '/api/v1/agent/runs', {
    prompt: 'true',
    config: { harness: { type: 'command' } },
  });
  const createRttMs = performance.now() - started;
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  let polls = 0;
  for (;;) {
    const run = await call<RunItem>(server, 'GET', `/api/v1/agent/runs/${created.run_id}`);
    polls++;
    if (run.state === 'SUCCEEDED') {
      const t0 = Date.parse(run.created_at);
      const at = {} as Record<TimedState, number>;
      for (const state of STATES) {
        const stamp = run.state_timestamps[state];
        const t = stamp === undefined ? NaN : Date.parse(stamp);
        if (Number.isNaN(t) || Number.isNaN(t0)) throw new Error(`run ${run.run_id}: no usable ${state} timestamp in ${JSON.stringify(run)}`);
        at[state] = t - t0;
      }
      return { createRttMs, at, polls };
    }
    if (['FAILED', 'ERROR', 'CANCELLED'].includes(run.state)) throw new Error(`run ${run.run_id} ended ${run.state}: ${JSON.stringify(run)}`);
    if (Date.now() > deadline) throw new Error(`run ${run.run_id} did not reach SUCCEEDED in ${RUN_TIMEOUT_MS / 1000} s (state ${run.state})`);
    await sleep(POLL_MS);
  }
}

/** Nearest-rank percentile. */
function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? NaN;
}

/** The server being measured, so a signal can still stop it. */
let active: OzServerHandle | null = null;

async function measure(backend: Backend): Promise<Sample[]> {
  const server = await startOzServer(backend, {
    ...(backend === 'postgres' ? { pgUrl: PG_URL } : {}),
    env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '10' },
  });
  active = server;
  try {
    for (let i = 0; i < WARMUP; i++) await oneRun(server);
    const samples: Sample[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await oneRun(server));
    return samples;
  } finally {
    active = null;
    const code = await server.stop();
    if (code !== 0) console.error(`note: ${backend} server exited with ${code}`);
  }
}

const fmt = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const cell = (s: string, w: number, left = false): string => (left ? s.padEnd(w) : s.padStart(w));

function printTable(results: Map<Backend, Sample[]>): void {
  const rows: [string, (s: Sample) => number][] = [
    ['create → INPROGRESS', (s) => s.at.INPROGRESS],
    ['create → SUCCEEDED', (s) => s.at.SUCCEEDED],
    ['create round trip (client)', (s) => s.createRttMs],
    ['  created_at → QUEUED', (s) => s.at.QUEUED],
    ['  QUEUED → PENDING', (s) => s.at.PENDING - s.at.QUEUED],
    ['  PENDING → CLAIMED', (s) => s.at.CLAIMED - s.at.PENDING],
    ['  CLAIMED → INPROGRESS', (s) => s.at.INPROGRESS - s.at.CLAIMED],
    ['  INPROGRESS → SUCCEEDED', (s) => s.at.SUCCEEDED - s.at.INPROGRESS],
  ];
  const header = [cell('store', 11, true), cell('metric (ms)', 28, true), cell('p50', 8), cell('p95', 8), cell('max', 8), cell('min', 8)].join('');
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const [backend, samples] of results) {
    for (const [name, get] of rows) {
      const values = samples.map(get);
      console.log([cell(backend, 11, true), cell(name, 28, true), ...[50, 95, 100].map((p) => cell(fmt(pct(values, p)), 8)), cell(fmt(Math.min(...values)), 8)].join(''));
    }
    const polls = samples.map((s) => s.polls);
    console.log(`${cell('', 11)}(${samples.length} runs; client GETs per run p50 ${pct(polls, 50)}, max ${pct(polls, 100)})`);
    console.log('');
  }
}

function uptimeLine(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`;
  }
}

async function main(): Promise<void> {
  assertLoopback(PG_URL);
  console.log(`Dispatch benchmark: Node ${process.version}, ${cpus().length} cores, ${WARMUP} warm-up + ${RUNS} measured runs per store`);
  console.log(`at start: ${uptimeLine()}`);
  console.log('State latencies from the server-side created_at (state_timestamps); round trip timed by the client.\n');
  const results = new Map<Backend, Sample[]>();
  for (const backend of ['sqlite', 'postgres'] as const) {
    const t = performance.now();
    results.set(backend, await measure(backend));
    console.error(`${backend}: done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  printTable(results);
  console.log(`at end: ${uptimeLine()}`);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: stopping the server`);
    void (active?.stop() ?? Promise.resolve(null)).finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  if (active !== null) await (active as OzServerHandle).stop();
}
