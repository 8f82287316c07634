/**
 * Store benchmark: claim throughput and run-list latency on SQLite and PostgreSQL.
 *
 *   npx tsx bench/store/run.ts        (or: npm run bench:store)
 *
 * - SQLite: a fresh file in a temp directory under os.tmpdir(), removed at the end.
 * - PostgreSQL: OZ_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
 *   in a fresh schema `oz_bench_<hex>` that is dropped at the end. Only loopback hosts
 *   are accepted.
 *
 * Sizes can be lowered for a quick check: OZ_BENCH_CLAIM_RUNS (5000),
 * OZ_BENCH_LIST_RUNS (100000), OZ_BENCH_LIST_SAMPLES (200).
 * Results are written to docs/benchmarks.md by hand.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql, type Insertable } from 'kysely';
import pg from 'pg';
import { newId } from '../../src/core/ids.js';
import type { RunState } from '../../src/core/run-state.js';
import type { ListRunsQuery, Run } from '../../src/core/run.js';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.js';
import type { RunsTable } from '../../src/store/schema.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { openSqliteFile } from '../../src/store/sqlite/open-sqlite-store.js';
import type { NewRun } from '../../src/store/store.js';
import { guard, intFromEnv, ms, onCleanup, progress, runCleanups, stats, table, type Stats } from '../support.js';

// ---------------------------------------------------------------------------
// Parameters

const CLAIM_RUNS = intFromEnv('OZ_BENCH_CLAIM_RUNS', 5_000);
const LIST_RUNS = intFromEnv('OZ_BENCH_LIST_RUNS', 100_000);
const LIST_SAMPLES = intFromEnv('OZ_BENCH_LIST_SAMPLES', 200);
const LIST_WARMUP = 10;
const PAGE_SIZE = 20;
const DEEP_PAGES = 50;
const ROUND_TRIP_SAMPLES = 2_000;
const LEASE_TTL_MS = 600_000;
const INSERT_CHUNK = 500;
const QUEUED_SHARE = 0.05;
/** Hard stop: the script should finish in ~5 minutes; this only catches a hang. */
const WATCHDOG_MS = 12 * 60_000;
const PG_URL = process.env.OZ_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

// ---------------------------------------------------------------------------
// Cleanup: run in reverse order at the end, on SIGINT/SIGTERM, or on the watchdog.

// ---------------------------------------------------------------------------
// Small helpers

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** Deterministic PRNG (mulberry32) so the seeded data is the same every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (x: number): string => Math.round(x).toLocaleString('en-US');

function newRun(teamId: string, i: number): NewRun {
  return {
    teamId,
    creatorId: null,
    title: `bench claim run ${i}`,
    prompt: 'Benchmark run: do nothing.',
    source: 'API',
    executionLocation: 'REMOTE',
    environmentId: null,
    schedule: null,
    parentRunId: null,
    skillSpec: null,
    config: { harness: { type: 'command' } },
  };
}

async function countWhere(store: SqlStore, teamId: string, state: RunState): Promise<number> {
  const { n } = await store.db
    .selectFrom('runs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('team_id', '=', teamId)
    .where('state', '=', state)
    .executeTakeFirstOrThrow();
  return Number(n);
}

async function countEvents(store: SqlStore, teamId: string): Promise<number> {
  const { n } = await store.db
    .selectFrom('run_events')
    .innerJoin('runs', 'runs.id', 'run_events.run_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('runs.team_id', '=', teamId)
    .executeTakeFirstOrThrow();
  return Number(n);
}

// ---------------------------------------------------------------------------
// Claims

/**
 * PostgreSQL planner statistics at claim time: `stale` = the last ANALYZE ran
 * while the queue was empty (the usual state between autovacuum's analyzes when
 * a backlog builds up); `fresh` = ANALYZE ran after the backlog was admitted.
 */
type PlannerStats = 'stale' | 'fresh' | '-';

interface ClaimResult {
  store: string;
  claimers: number;
  limit: number;
  plannerStats: PlannerStats;
  runs: number;
  seconds: number;
  calls: number;
  callStats: Stats;
  createPerSec: number;
  check: string;
}

/** A fresh team with `n` runs made through createRun and admitted to PENDING. */
async function seedPending(store: SqlStore, n: number, label: string): Promise<{ teamId: string; createPerSec: number }> {
  const team = await store.createTeam({ name: `bench-claims-${label}-${hex(4)}`, maxConcurrentRuns: 10_000_000 }, Date.now());
  // PostgreSQL: several creates in flight over the pool; SQLite: one at a time (one connection).
  const concurrency = store.dialect === 'postgres' ? 8 : 1;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await store.createRun(newRun(team.id, i), Date.now());
      }
    }),
  );
  const createPerSec = n / ((performance.now() - t0) / 1000);
  const admitted = await store.admitQueuedRuns(team.id, Date.now());
  if (admitted.length !== n) throw new Error(`admitted ${admitted.length} of ${n} runs`);
  return { teamId: team.id, createPerSec };
}

async function benchClaims(store: SqlStore, claimers: number, limit: number, plannerStats: PlannerStats = '-'): Promise<ClaimResult> {
  const label = `${store.dialect}-c${claimers}-l${limit}${plannerStats === '-' ? '' : `-${plannerStats}`}`;
  progress(`${label}: seeding ${int(CLAIM_RUNS)} PENDING runs`);
  // Both variants start from statistics taken with no PENDING run in the table.
  if (store.dialect === 'postgres') await sql`ANALYZE runs`.execute(store.db);
  const { teamId, createPerSec } = await seedPending(store, CLAIM_RUNS, label);
  if (plannerStats === 'fresh') await sql`ANALYZE runs`.execute(store.db);
  const pendingBefore = await countWhere(store, teamId, 'PENDING');
  if (pendingBefore !== CLAIM_RUNS) throw new Error(`${label}: ${pendingBefore} PENDING before claiming, expected ${CLAIM_RUNS}`);

  progress(`${label}: claiming`);
  const seen = new Set<string>();
  let duplicates = 0;
  let calls = 0;
  const latencies: number[] = [];
  // Bounded loop: each claimer stops at the first empty claim, or after this many calls.
  const maxCallsPerClaimer = Math.ceil(CLAIM_RUNS / limit) + 100;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: claimers }, async (_, c) => {
      const workerId = `bench-worker-${c}`;
      for (let i = 0; i < maxCallsPerClaimer; i++) {
        const s = performance.now();
        const runs: Run[] = await store.claimRuns({ workerId, limit, leaseTtlMs: LEASE_TTL_MS, at: Date.now() });
        latencies.push(performance.now() - s);
        calls++;
        if (runs.length === 0) return;
        for (const run of runs) {
          if (seen.has(run.id)) duplicates++;
          seen.add(run.id);
          if (run.state !== 'CLAIMED' || run.workerId !== workerId || run.leaseToken === null) {
            throw new Error(`${label}: claim returned run ${run.id} in state ${run.state} for ${String(run.workerId)}`);
          }
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;

  // Sanity: every run claimed exactly once, with its state event.
  const claimed = await countWhere(store, teamId, 'CLAIMED');
  const pendingAfter = await countWhere(store, teamId, 'PENDING');
  const events = await countEvents(store, teamId);
  const problems: string[] = [];
  if (duplicates > 0) problems.push(`${duplicates} duplicate claims`);
  if (seen.size !== CLAIM_RUNS) problems.push(`${seen.size} distinct runs claimed`);
  if (claimed !== CLAIM_RUNS) problems.push(`${claimed} CLAIMED in the table`);
  if (pendingAfter !== 0) problems.push(`${pendingAfter} still PENDING`);
  if (events !== 3 * CLAIM_RUNS) problems.push(`${events} events (expected ${3 * CLAIM_RUNS})`);
  return {
    store: store.dialect,
    claimers,
    limit,
    plannerStats,
    runs: seen.size,
    seconds,
    calls,
    callStats: stats(latencies),
    createPerSec,
    check: problems.length === 0 ? 'ok' : problems.join('; '),
  };
}

// ---------------------------------------------------------------------------
// Listing over a large history

const TERMINAL_MIX: Array<[RunState, number]> = [
  ['SUCCEEDED', 0.7],
  ['FAILED', 0.15],
  ['ERROR', 0.05],
  ['CANCELLED', 0.1],
];

function pickTerminal(r: number): RunState {
  let acc = 0;
  for (const [state, share] of TERMINAL_MIX) {
    acc += share;
    if (r < acc) return state;
  }
  return 'SUCCEEDED';
}

const AGENT_NAMES = ['triage', 'fix-flaky-test', 'dependency-bump', 'docs', 'refactor'];
const PROMPT_TEXT =
  'Look at the failing job in CI, find the root cause, and open a pull request with a fix and a regression test. ' +
  'Keep the change small and explain the reasoning in the description.';

/**
 * Bulk-insert `n` runs for one team through the store's Kysely instance: a mix of
 * finished runs and ~5% QUEUED ones spread through time (not all at the top, so
 * the `states` filter has to skip rows). No run_events: listing does not read them.
 */
async function seedHistory(store: SqlStore, n: number): Promise<{ teamId: string; queued: number; seconds: number }> {
  const team = await store.createTeam({ name: `bench-list-${hex(4)}`, maxConcurrentRuns: 10 }, Date.now());
  const random = prng(42);
  const span = 30 * 24 * 3_600_000;
  const start = Date.now() - span - 3_600_000;
  let queued = 0;
  const t0 = performance.now();
  await store.db.transaction().execute(async (tx) => {
    for (let offset = 0; offset < n; offset += INSERT_CHUNK) {
      const rows: Insertable<RunsTable>[] = [];
      for (let i = offset; i < Math.min(n, offset + INSERT_CHUNK); i++) {
        const createdAt = start + Math.floor((i / n) * span) + Math.floor(random() * 60_000);
        const name = AGENT_NAMES[i % AGENT_NAMES.length] ?? 'triage';
        const config = JSON.stringify({ name, harness: { type: 'command', command: 'true' } });
        const base = {
          id: newId(),
          team_id: team.id,
          creator_id: null,
          title: `bench history run ${i}: ${name}`,
          prompt: PROMPT_TEXT,
          source: 'API',
          execution_location: 'REMOTE',
          name,
          config,
          created_at: createdAt,
          queued_at: createdAt,
        };
        if (random() < QUEUED_SHARE) {
          queued++;
          rows.push({ ...base, state: 'QUEUED', attempt: 0, updated_at: createdAt, last_event_seq: 1 });
          continue;
        }
        const state = pickTerminal(random());
        const pendingAt = createdAt + Math.floor(random() * 5_000);
        const claimedAt = pendingAt + Math.floor(random() * 1_000);
        const startedAt = claimedAt + Math.floor(random() * 2_000);
        const finishedAt = startedAt + 60_000 + Math.floor(random() * 30 * 60_000);
        const statusMessage =
          state === 'FAILED'
            ? JSON.stringify({ message: 'The agent gave up.' })
            : state === 'ERROR'
              ? JSON.stringify({ message: 'worker lost', error_code: 'resource_unavailable', retryable: true, reason: 'worker_lost' })
              : null;
        rows.push({
          ...base,
          state,
          attempt: 1,
          worker_id: 'bench-history-worker',
          status_message: statusMessage,
          usage: JSON.stringify({ input_tokens: 1000 + (i % 5000), output_tokens: 200 + (i % 700), steps: 1 + (i % 30) }),
          updated_at: finishedAt,
          started_at: startedAt,
          pending_at: pendingAt,
          claimed_at: claimedAt,
          inprogress_at: startedAt,
          succeeded_at: state === 'SUCCEEDED' ? finishedAt : null,
          failed_at: state === 'FAILED' ? finishedAt : null,
          error_at: state === 'ERROR' ? finishedAt : null,
          cancelled_at: state === 'CANCELLED' ? finishedAt : null,
          last_event_seq: 5,
        });
      }
      await tx.insertInto('runs').values(rows).execute();
    }
  });
  if (store.dialect === 'postgres') await sql`ANALYZE runs`.execute(store.db);
  return { teamId: team.id, queued, seconds: (performance.now() - t0) / 1000 };
}

interface ListResult {
  store: string;
  what: string;
  stats: Stats;
}

async function timeList(store: SqlStore, what: string, query: ListRunsQuery): Promise<ListResult> {
  for (let i = 0; i < LIST_WARMUP; i++) await store.listRuns(query);
  const samples: number[] = [];
  for (let i = 0; i < LIST_SAMPLES; i++) {
    const s = performance.now();
    const page = await store.listRuns(query);
    samples.push(performance.now() - s);
    if (page.runs.length !== query.limit) throw new Error(`${what}: page of ${page.runs.length} runs, expected ${query.limit}`);
  }
  return { store: store.dialect, what, stats: stats(samples) };
}

/**
 * Follow `pages` cursors from the first page; return the cursor of page
 * `pages + 1`. Checks the walk: strictly descending (updated_at, id), no repeats.
 */
async function walkCursors(store: SqlStore, query: ListRunsQuery, pages: number): Promise<{ cursor: string; walk: Stats }> {
  let cursor: string | undefined;
  const seen = new Set<string>();
  let previous: Run | undefined;
  const samples: number[] = [];
  for (let p = 0; p < pages; p++) {
    const s = performance.now();
    const page = await store.listRuns(cursor === undefined ? query : { ...query, cursor });
    samples.push(performance.now() - s);
    for (const run of page.runs) {
      if (seen.has(run.id)) throw new Error(`cursor walk: run ${run.id} listed twice`);
      seen.add(run.id);
      if (previous && (run.updatedAt > previous.updatedAt || (run.updatedAt === previous.updatedAt && run.id >= previous.id))) {
        throw new Error(`cursor walk: run ${run.id} out of order`);
      }
      previous = run;
    }
    if (page.nextCursor === null) throw new Error(`cursor walk: no next cursor after page ${p + 1}`);
    cursor = page.nextCursor;
  }
  if (cursor === undefined) throw new Error('cursor walk: no pages');
  return { cursor, walk: stats(samples) };
}

async function benchList(store: SqlStore): Promise<{ results: ListResult[]; seedSeconds: number; queued: number }> {
  progress(`${store.dialect}: bulk-inserting ${int(LIST_RUNS)} runs`);
  const { teamId, queued, seconds } = await seedHistory(store, LIST_RUNS);
  progress(`${store.dialect}: seeded in ${seconds.toFixed(1)} s; timing list requests`);
  const all: ListRunsQuery = { teamId, filters: {}, sortBy: 'updated_at', sortOrder: 'desc', limit: PAGE_SIZE };
  const queuedOnly: ListRunsQuery = { ...all, filters: { states: ['QUEUED'] } };
  const results: ListResult[] = [];
  results.push(await timeList(store, 'first page', all));
  const deep = await walkCursors(store, all, DEEP_PAGES);
  results.push({ store: store.dialect, what: `cursor walk, pages 1-${DEEP_PAGES} (each page)`, stats: deep.walk });
  results.push(await timeList(store, `page ${DEEP_PAGES + 1} (cursor ${DEEP_PAGES} pages in)`, { ...all, cursor: deep.cursor }));
  results.push(await timeList(store, 'states=[QUEUED], first page', queuedOnly));
  const deepQueued = await walkCursors(store, queuedOnly, DEEP_PAGES);
  results.push(await timeList(store, `states=[QUEUED], page ${DEEP_PAGES + 1}`, { ...queuedOnly, cursor: deepQueued.cursor }));
  return { results, seedSeconds: seconds, queued };
}

// ---------------------------------------------------------------------------
// PostgreSQL baselines: what a round trip and a bare SKIP LOCKED queue cost here.

interface Baseline {
  what: string;
  stats: Stats;
  perSec: number;
}

async function roundTrips(what: string, samples: number, once: () => Promise<unknown>): Promise<Baseline> {
  for (let i = 0; i < 50; i++) await once();
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < samples; i++) {
    const s = performance.now();
    await once();
    latencies.push(performance.now() - s);
  }
  return { what, stats: stats(latencies), perSec: samples / ((performance.now() - t0) / 1000) };
}

async function pgClient(schema: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await client.connect();
  return client;
}

/** A minimal job table claimed one row per statement with SKIP LOCKED, on raw pg clients. */
async function bareSkipLockedQueue(schema: string, claimers: number): Promise<Baseline> {
  const clients = await Promise.all(Array.from({ length: claimers }, () => pgClient(schema)));
  try {
    const [admin] = clients;
    if (!admin) throw new Error('no client');
    await admin.query(`DROP TABLE IF EXISTS bare_jobs`);
    await admin.query(`CREATE TABLE bare_jobs (id bigserial PRIMARY KEY, state text NOT NULL, payload text NOT NULL, locked_by text, locked_at bigint)`);
    await admin.query(`CREATE INDEX bare_jobs_pending ON bare_jobs (id) WHERE state = 'PENDING'`);
    await admin.query(`INSERT INTO bare_jobs (state, payload) SELECT 'PENDING', '{"harness":{"type":"command"}}' FROM generate_series(1, $1::int)`, [CLAIM_RUNS]);
    await admin.query(`ANALYZE bare_jobs`);
    const claimSql = `UPDATE bare_jobs SET state = 'CLAIMED', locked_by = $1, locked_at = $2
      WHERE id = (SELECT id FROM bare_jobs WHERE state = 'PENDING' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING *`;
    const latencies: number[] = [];
    let claimed = 0;
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < CLAIM_RUNS + 100; i++) {
          const s = performance.now();
          const { rowCount } = await client.query(claimSql, [`bare-${c}`, Date.now()]);
          latencies.push(performance.now() - s);
          if (!rowCount) return;
          claimed += rowCount;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    if (claimed !== CLAIM_RUNS) throw new Error(`bare queue: claimed ${claimed} of ${CLAIM_RUNS}`);
    return { what: `bare SKIP LOCKED claim, ${claimers} claimer(s) (raw pg, 1 row/stmt)`, stats: stats(latencies), perSec: claimed / seconds };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

// ---------------------------------------------------------------------------
// Main

interface Section {
  store: string;
  version: string;
  claims: ClaimResult[];
  list: ListResult[];
  listSeedSeconds: number;
  queued: number;
  baselines: Baseline[];
  settings: string;
}

async function benchSqlite(): Promise<Section> {
  const dir = mkdtempSync(join(tmpdir(), 'oz-bench-'));
  onCleanup('remove SQLite temp dir', async () => rmSync(dir, { recursive: true, force: true }));
  const store = await openSqliteFile(join(dir, 'oz.db'));
  onCleanup('close SQLite store', () => store.close());
  const { rows } = await sql<{ v: string }>`SELECT sqlite_version() AS v`.execute(store.db);
  const version = rows[0]?.v ?? '?';
  progress(`SQLite ${version} at ${dir}`);

  const list = await benchList(store);
  const claims: ClaimResult[] = [];
  for (const limit of [1, 10, 50]) claims.push(await benchClaims(store, 1, limit));
  const roundTrip = await roundTrips('SELECT 1 via store.db (Kysely)', ROUND_TRIP_SAMPLES, () => sql`SELECT 1`.execute(store.db));
  return {
    store: 'sqlite',
    version,
    claims,
    list: list.results,
    listSeedSeconds: list.seedSeconds,
    queued: list.queued,
    baselines: [roundTrip],
    settings: 'journal_mode=WAL, synchronous=NORMAL',
  };
}

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) {
    throw new Error(`bench: refusing to use PostgreSQL at ${host}; point OZ_TEST_DATABASE_URL at 127.0.0.1`);
  }
}

async function benchPostgres(): Promise<Section> {
  assertLoopback(PG_URL);
  const schema = `oz_bench_${hex(6)}`;
  onCleanup(`drop schema ${schema}`, async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await client.end();
    }
  });
  const store = await openPostgresStore({ url: PG_URL, schema });
  onCleanup('close PostgreSQL store', () => store.close());
  // Deterministic statistics: no autovacuum/autoanalyze on the bench schema's
  // tables; the benchmark runs ANALYZE itself (see PlannerStats).
  await sql`ALTER TABLE runs SET (autovacuum_enabled = false)`.execute(store.db);
  await sql`ALTER TABLE run_events SET (autovacuum_enabled = false)`.execute(store.db);

  const show = async (name: string): Promise<string> => {
    const { rows } = await sql<Record<string, string>>`${sql.raw(`SHOW ${name}`)}`.execute(store.db);
    return Object.values(rows[0] ?? {})[0] ?? '?';
  };
  const version = await show('server_version');
  const settings = ['synchronous_commit', 'fsync', 'shared_buffers', 'wal_sync_method'];
  const settingValues: string[] = [];
  for (const name of settings) settingValues.push(`${name}=${await show(name)}`);
  progress(`PostgreSQL ${version}, schema ${schema}`);

  const list = await benchList(store);

  progress('postgres: round-trip baselines');
  const baselines: Baseline[] = [];
  const raw = await pgClient(schema);
  try {
    baselines.push(await roundTrips('SELECT 1 via one raw pg.Client', ROUND_TRIP_SAMPLES, () => raw.query('SELECT 1')));
  } finally {
    await raw.end();
  }
  const walClient = await pgClient(schema);
  try {
    await walClient.query('CREATE TABLE bare_inserts (id bigserial PRIMARY KEY, at bigint NOT NULL)');
    baselines.push(
      await roundTrips('INSERT one row, autocommit (one WAL flush), raw pg.Client', ROUND_TRIP_SAMPLES, () =>
        walClient.query('INSERT INTO bare_inserts (at) VALUES ($1)', [Date.now()]),
      ),
    );
  } finally {
    await walClient.end();
  }
  baselines.push(await roundTrips('SELECT 1 via store.db (Kysely + pg.Pool)', ROUND_TRIP_SAMPLES, () => sql`SELECT 1`.execute(store.db)));
  baselines.push(
    await roundTrips('BEGIN; SELECT 1; COMMIT via store.db (empty transaction)', ROUND_TRIP_SAMPLES / 2, () => store.db.transaction().execute((tx) => sql`SELECT 1`.execute(tx))),
  );
  progress('postgres: bare SKIP LOCKED queue');
  baselines.push(await bareSkipLockedQueue(schema, 1));
  baselines.push(await bareSkipLockedQueue(schema, 4));

  const claims: ClaimResult[] = [];
  for (const [claimers, limit] of [
    [1, 1],
    [4, 1],
    [1, 10],
    [1, 50],
  ] as const) {
    for (const plannerStats of ['stale', 'fresh'] as const) claims.push(await benchClaims(store, claimers, limit, plannerStats));
  }
  return {
    store: 'postgres',
    version,
    claims,
    list: list.results,
    listSeedSeconds: list.seedSeconds,
    queued: list.queued,
    baselines,
    settings: `${settingValues.join(', ')}; autovacuum off on the bench tables (explicit ANALYZE)`,
  };
}

function report(sections: Section[], totalSeconds: number, loadAtStart: number): string {
  const cpu = cpus()[0]?.model ?? '?';
  const out: string[] = [];
  out.push(
    `Store benchmark (bench/store/run.ts) — Node ${process.version}, ${availableParallelism()} cores (${cpu}), ` +
      sections.map((s) => `${s.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} ${s.version}`).join(', '),
  );
  for (const s of sections) out.push(`  ${s.store}: ${s.settings}`);
  out.push('');

  const claimRows = sections.flatMap((s) =>
    s.claims.map((c) => [
      c.store,
      String(c.claimers),
      String(c.limit),
      c.plannerStats,
      int(c.runs),
      c.seconds.toFixed(2),
      int(c.runs / c.seconds),
      int(c.calls / c.seconds),
      ms(c.callStats.p50),
      ms(c.callStats.p95),
      ms(c.callStats.max),
      int(c.createPerSec),
      c.check,
    ]),
  );
  out.push(
    table(
      `Claims: ${int(CLAIM_RUNS)} PENDING runs per row, claimed until empty (runs/s = runs claimed per second)`,
      ['store', 'claimers', 'limit', 'pg stats', 'runs', 'time s', 'runs/s', 'calls/s', 'call p50 ms', 'p95 ms', 'max ms', 'seed createRun/s', 'check'],
      claimRows,
      [false, true, true, false, true, true, true, true, true, true, true, true, false],
    ),
  );
  out.push('pg stats: stale = last ANALYZE saw an empty queue (as between autoanalyzes while a backlog builds); fresh = ANALYZE after admitting the backlog.');
  out.push('');

  const listRows = sections.flatMap((s) => s.list.map((l) => [l.store, l.what, String(l.stats.n), ms(l.stats.p50), ms(l.stats.p95), ms(l.stats.max)]));
  const seeds = sections.map((s) => `${s.store} seeded in ${s.listSeedSeconds.toFixed(1)} s, ${int(s.queued)} QUEUED`).join('; ');
  out.push(
    table(
      `List: ${int(LIST_RUNS)} runs in one team, limit ${PAGE_SIZE}, sort updated_at desc (${seeds})`,
      ['store', 'request', 'samples', 'p50 ms', 'p95 ms', 'max ms'],
      listRows,
      [false, false, true, true, true, true],
    ),
  );
  out.push('');

  const baseRows = sections.flatMap((s) => s.baselines.map((b) => [s.store, b.what, ms(b.stats.p50), ms(b.stats.p95), int(b.perSec)]));
  out.push(table('Baselines (sequential unless stated)', ['store', 'operation', 'p50 ms', 'p95 ms', 'per s'], baseRows, [false, false, true, true, true]));
  out.push('');
  const [loadAtEnd = NaN] = loadavg();
  out.push(
    `Total time ${totalSeconds.toFixed(0)} s. 1-minute load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end ` +
      `(the end value includes the benchmark's own load; other processes on a shared machine show up as noise, mostly in p95/max).`,
  );
  return out.join('\n');
}

async function main(): Promise<number> {
  guard(WATCHDOG_MS);

  const t0 = performance.now();
  const [loadAtStart = NaN] = loadavg();
  const sections: Section[] = [];
  let failed = false;
  try {
    sections.push(await benchSqlite());
    await runCleanups();
    sections.push(await benchPostgres());
  } catch (error) {
    failed = true;
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await runCleanups();
  }
  if (sections.length > 0) console.log(`\n${report(sections, (performance.now() - t0) / 1000, loadAtStart)}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
