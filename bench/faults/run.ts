/**
 * The fault-injection harness (issue 16): a scaled deployment on a private
 * PostgreSQL cluster, a seeded mix of runs, faults at seeded times, then the
 * invariants checked from the database and from the host.
 *
 *   npm run bench:faults          (tsx bench/faults/run.ts; needs root, bwrap, PostgreSQL binaries and a current dist/)
 *
 * Parameters (integers): FAULTS_SEED (1), FAULTS_RUNS (60), FAULTS_SECONDS (120, the window in
 * which runs are submitted and faults injected), FAULTS_DRAIN_SECONDS (60, the wait for every run
 * to end), FAULTS_WORKER_KILLS (2), FAULTS_SERVER_KILLS (2), FAULTS_WORKER_STOPS (2),
 * FAULTS_PG_RESTARTS (1), FAULTS_CANCELS (6), FAULTS_LEASE_TTL_MS (6000),
 * FAULTS_WORKER_CONCURRENCY (2), FAULTS_TEAM_LIMIT (12), FAULTS_TOLERANCE_MS (2000).
 * FAULTS_BUILD=1 runs `npm run build` first; FAULTS_LOG_DIR=DIR keeps the processes' logs there.
 * Exits 1 when a violation was found, 2 when it could not run.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cgroups } from '../../src/sandbox/bwrap/cgroups.js';
import { findPostgresBinDir } from '../../test/support/private-postgres.js';
import { guard, intFromEnv, onCleanup, progress, runCleanups } from '../support.js';
import { Api } from './api.js';
import { checkEvents, checkHost, checkPublishing, checkSubmissions, type Violation } from './checks.js';
import { openRuns } from './db.js';
import { Deployment } from './deployment.js';
import { cancelAll, injectAll, planCancels, planFaults, type CancelRecord, type FaultRecord } from './faults.js';
import { findAndRemoveLeftovers } from './leftovers.js';
import { Rng } from './random.js';
import { faultTable, reasonTable, runTable, timeline, violationTable } from './report.js';
import { HostSampler } from './sampler.js';
import { takeSnapshot } from './snapshot.js';
import { createEnvironment, makeRemote, planRuns, submitAll, type Submission } from './workload.js';

const SEED = intFromEnv('FAULTS_SEED', 1, 0);
const RUNS = intFromEnv('FAULTS_RUNS', 60);
const WINDOW_MS = intFromEnv('FAULTS_SECONDS', 120, 10) * 1000;
const DRAIN_MS = intFromEnv('FAULTS_DRAIN_SECONDS', 60) * 1000;
const COUNTS = {
  worker_kill: intFromEnv('FAULTS_WORKER_KILLS', 2, 0),
  server_kill: intFromEnv('FAULTS_SERVER_KILLS', 2, 0),
  worker_stop: intFromEnv('FAULTS_WORKER_STOPS', 2, 0),
  pg_restart: intFromEnv('FAULTS_PG_RESTARTS', 1, 0),
};
const CANCELS = intFromEnv('FAULTS_CANCELS', 6, 0);
const LEASE_TTL_MS = intFromEnv('FAULTS_LEASE_TTL_MS', 6000, 1000);
const CONCURRENCY = intFromEnv('FAULTS_WORKER_CONCURRENCY', 2);
const TEAM_LIMIT = intFromEnv('FAULTS_TEAM_LIMIT', 12);
const TOLERANCE_MS = intFromEnv('FAULTS_TOLERANCE_MS', 2000, 0);
const SERVERS = 2;
const WORKERS = 3;
const TIMELINES = 8;
/** A hang stops the harness: set-up, the window, the drain, checks and teardown. */
const WATCHDOG_MS = 60_000 + WINDOW_MS + DRAIN_MS + 45_000;

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** src/ files whose dist/ counterpart is missing or older. */
function staleDist(): string[] {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        const built = join(REPO, 'dist', relative(join(REPO, 'src'), path)).replace(/\.ts$/, '.js');
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(path).mtimeMs) stale.push(relative(REPO, path));
      }
    }
  };
  walk(join(REPO, 'src'));
  return stale;
}

function preflight(): string {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bwrap backend gives each sandbox its own host uid only as root, and the host checks rely on it');
  if (process.env.FAULTS_BUILD === '1') {
    progress('npm run build');
    execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const stale = staleDist();
  if (stale.length > 0) {
    throw new Error(
      `dist/ is older than src/ (${stale.slice(0, 5).join(', ')}${stale.length > 5 ? `, +${stale.length - 5}` : ''}): the processes run dist/; run \`npm run build\` (or FAULTS_BUILD=1)`,
    );
  }
  const bin = findPostgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or pg_config --bindir');
  return bin;
}

/** Alive and not a zombie (a daemon's zombie waits for the container's init to reap it). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitForRuns(deployment: Deployment, ids: string[], deadline: number): Promise<number> {
  let open = ids.length;
  while (Date.now() < deadline) {
    try {
      open = await openRuns(deployment.databaseUrl, ids);
      if (open === 0) return 0;
    } catch {
      // The database is restarting; ask again.
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return open;
}

/** A slot that died on its own (a crash: reported) is started again, so the drain can finish. */
async function restartCrashed(deployment: Deployment): Promise<void> {
  for (let i = 0; i < deployment.servers.length; i++) if (!deployment.servers[i]?.process.running) await deployment.startServer(i).catch(() => {});
  for (let i = 0; i < deployment.workers.length; i++) if (!deployment.workers[i]?.process.running) await deployment.startWorker(i).catch(() => {});
}

async function main(): Promise<number> {
  guard(WATCHDOG_MS);
  const pgBin = preflight();
  const root = mkdtempSync(join(tmpdir(), 'oz-faults-'));
  chmodSync(root, 0o711); // the sandboxes' uids traverse it to their workspaces and mirrors
  onCleanup('harness directory', () => rmSync(root, { recursive: true, force: true }));
  const keepLogs = process.env.FAULTS_LOG_DIR;
  if (keepLogs)
    onCleanup('keep logs', () => {
      mkdirSync(keepLogs, { recursive: true });
      if (existsSync(join(root, 'logs'))) cpSync(join(root, 'logs'), keepLogs, { recursive: true });
    });
  const repos = join(root, 'repos');
  mkdirSync(repos, { mode: 0o755 });
  const remote = makeRemote(repos);

  console.log(
    `Fault-injection harness: seed ${SEED}, ${RUNS} runs over ${WINDOW_MS / 1000} s, ${SERVERS} servers + ${WORKERS} workers x${CONCURRENCY}, lease TTL ${LEASE_TTL_MS} ms, Node ${process.version}, ${cpus().length} cores`,
  );
  progress('private PostgreSQL, servers, workers');
  const started = await Deployment.start(
    { root, pgBinDir: pgBin, servers: SERVERS, workers: WORKERS, workerConcurrency: CONCURRENCY, leaseTtlMs: LEASE_TTL_MS, teamMaxConcurrentRuns: TEAM_LIMIT, fileRepoRoot: repos },
    (pg) => onCleanup('private PostgreSQL', () => pg.destroy()),
    (d) => {
      onCleanup('cgroups of the workers', () => Cgroups.detect()?.removeWhere((name) => d.workers.some((w) => w.process.pids.some((pid) => name.startsWith(`oz-w${pid}-`)))));
      onCleanup('deployment', () => d.stop());
    },
  );
  const sampler = new HostSampler(started.sandboxRoot, (pid) => started.workers.some((w) => w.process.pids.includes(pid)));
  sampler.start(200);
  onCleanup('host sampler', () => sampler.stop());

  const rng = new Rng(SEED);
  const api = new Api(
    started.servers.map((s) => s.url),
    started.adminKey,
  );
  const environmentId = await createEnvironment(api, remote.url);
  const runPlans = planRuns(rng, RUNS, Math.floor(WINDOW_MS * 0.8), SEED);
  const faultPlans = planFaults(rng, COUNTS, { servers: SERVERS, workers: WORKERS, leaseTtlMs: LEASE_TTL_MS }, 10_000, WINDOW_MS);
  const cancelPlans = planCancels(rng, CANCELS, 5000, Math.floor(WINDOW_MS * 0.9));

  const origin = Date.now();
  const log = (line: string): void => progress(`+${((Date.now() - origin) / 1000).toFixed(1)} s ${line}`);
  progress(`window of ${WINDOW_MS / 1000} s: ${runPlans.length} runs, ${faultPlans.length} faults (${faultPlans.map((f) => f.kind).join(', ')}), ${cancelPlans.length} cancels`);
  const live: Submission[] = [];
  let windowOver = false;
  const [submissions, faults, cancels] = await Promise.all([
    submitAll(api, runPlans, environmentId, origin, (s) => live.push(s)),
    injectAll(started, faultPlans, origin, log, () => windowOver),
    cancelAll(api, started.databaseUrl, cancelPlans, live, origin, () => windowOver),
    new Promise<void>((resolve) => setTimeout(() => resolve(), WINDOW_MS)).then(() => (windowOver = true)),
  ]);
  await restartCrashed(started);

  const ids = submissions.map((s) => s.runId).filter((id): id is string => id !== null);
  log(`window over; waiting up to ${DRAIN_MS / 1000} s for ${ids.length} runs to end`);
  const open = await waitForRuns(started, ids, Date.now() + DRAIN_MS);
  log(open === 0 ? 'every run ended' : `${open} runs still open; checking anyway`);
  await new Promise((resolve) => setTimeout(resolve, TOLERANCE_MS + 1000)); // a sandbox outliving its run has to be seen doing so
  await started.stop();
  sampler.sample();
  sampler.stop();

  progress('checks');
  const snapshot = await takeSnapshot(started.databaseUrl, remote.bare);
  const publishing = new Set(submissions.filter((s) => s.plan.kind === 'publish' && s.runId).map((s) => s.runId as string));
  const crashes: Violation[] = [...started.servers.map((s) => s.process), ...started.workers.map((w) => w.process)].flatMap((p) =>
    p.crashes.map((c) => ({
      kind: 'process_crashed',
      runId: null,
      detail: `${p.name} pid ${c.pid} exited by itself at +${((c.at - origin) / 1000).toFixed(1)} s (code ${c.code}, signal ${c.signal}): ${c.logTail.split('\n').slice(-3).join(' | ').slice(0, 300)}`,
    })),
  );
  const failedFaults: Violation[] = faults.filter((f) => f.error).map((f) => ({ kind: 'fault_not_recovered', runId: null, detail: `${f.plan.kind} ${f.target}: ${f.error}` }));
  const sightings = [...sampler.sandboxes.values()];
  const ownUids = new Set(sightings.filter((s) => snapshot.runs.has(s.runId)).map((s) => s.uid));
  const violations: Violation[] = [
    ...checkSubmissions(submissions, snapshot),
    ...checkEvents(snapshot),
    ...checkPublishing(snapshot, publishing),
    ...checkHost(snapshot, sightings, sampler.concurrent, TOLERANCE_MS, origin),
    ...crashes,
    ...failedFaults,
    ...findAndRemoveLeftovers({
      pids: started.allPids,
      workerPids: started.workers.flatMap((w) => w.process.pids),
      sandboxProcesses: sampler.sandboxProcesses(),
      ownUids,
      sandboxRoot: started.sandboxRoot,
      root,
    }),
  ];

  printReport({ faults, cancels, submissions, snapshot, violations, sampler, origin });
  const pgPid = started.pg.pid();
  await runCleanups();
  const late: Violation[] = [];
  if (pgPid !== null && running(pgPid)) {
    late.push({ kind: 'leftover_process', runId: null, detail: `PostgreSQL postmaster pid ${pgPid} still runs after pg_ctl stop` });
    process.kill(pgPid, 'SIGKILL');
  }
  if (existsSync(root)) late.push({ kind: 'leftover_dir', runId: null, detail: `${root} could not be removed` });
  for (const v of late) console.log(`  ${v.kind}: ${v.detail}`);
  violations.push(...late);
  const leftovers = violations.filter((v) => v.kind.startsWith('leftover'));
  console.log(
    `\nLeft behind: ${leftovers.length > 0 ? `${leftovers.length} leftover_* findings (removed since)` : 'nothing (no process, sandbox directory or cgroup of this harness remains)'}`,
  );
  console.log(violations.length === 0 ? 'No violations.' : `${violations.length} violations.`);
  return violations.length === 0 ? 0 : 1;
}

function printReport(r: {
  faults: FaultRecord[];
  cancels: CancelRecord[];
  submissions: Submission[];
  snapshot: Awaited<ReturnType<typeof takeSnapshot>>;
  violations: Violation[];
  sampler: HostSampler;
  origin: number;
}): void {
  console.log('');
  for (const f of r.faults) {
    const outage = f.plan.kind === 'pg_restart' ? `; /healthz during the outage: ${f.duringOutage.map(String).join(', ')}` : '';
    console.log(
      `  +${((f.at - r.origin) / 1000).toFixed(1).padStart(6)} s  ${f.plan.kind.padEnd(11)} ${f.target}, down ${f.plan.downMs} ms, ${f.heldRuns.length} runs leased${outage}${f.error ? `; ERROR ${f.error}` : ''}`,
    );
  }
  console.log('');
  console.log(faultTable(r.faults, r.cancels, r.snapshot));
  console.log('');
  console.log(runTable(r.submissions, r.snapshot));
  console.log('');
  console.log(reasonTable(r.snapshot));
  console.log('');
  console.log(violationTable(r.violations));
  const branches = r.snapshot.branches;
  const artifacts = [...r.snapshot.artifacts.values()].flat().filter((t) => t === 'BRANCH').length;
  console.log(`\nRemote: ${branches.length} oz/* branches, ${branches.reduce((n, b) => n + b.updates, 0)} ref updates in its reflog; ${artifacts} BRANCH artifacts.`);
  console.log(
    `Host: ${r.sampler.samples} samples (slowest ${r.sampler.slowestSampleMs.toFixed(1)} ms), ${r.sampler.sandboxes.size} sandboxes of this deployment seen (and ${r.sampler.foreign.size} of other workers on the host, not checked); tolerance ${TOLERANCE_MS} ms.`,
  );
  const findings = r.violations.filter((v) => v.runId !== null);
  const runs = [...new Set(findings.map((v) => v.runId as string))].filter((id) => r.snapshot.runs.has(id));
  if (runs.length > 0) {
    console.log(`\nTimelines (times from the window's start${runs.length > TIMELINES ? `; ${TIMELINES} of ${runs.length} runs` : ''}):`);
    for (const id of runs.slice(0, TIMELINES)) console.log(timeline(id, r.snapshot, [...r.sampler.sandboxes.values()], r.violations, r.origin));
  }
  const other = r.violations.filter((v) => v.runId === null);
  if (other.length > 0) {
    console.log('\nFindings without a run:');
    for (const v of other.slice(0, 20)) console.log(`  ${v.kind}: ${v.detail}`);
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`bench:faults could not run: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
} finally {
  await runCleanups();
}
process.exit(process.exitCode);
