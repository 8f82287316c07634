/**
 * The faults, at seeded times over the window, one at a time (each waits for
 * the previous one to be over, so their effects can be told apart):
 *
 * - worker_kill  kill -9 of a worker, restarted after 1–4 s;
 * - server_kill  kill -9 of a server, restarted (same port) after 1–3 s;
 * - worker_stop  SIGSTOP of a worker for longer than the lease TTL plus the
 *                sweep's grace (its lease lapses while its sandboxes run on),
 *                then SIGCONT;
 * - pg_restart   the private cluster stopped (`pg_ctl stop -m fast`, clients
 *                get 57P01 as in a restart) and started again after 1–4 s;
 *
 * and, on their own timeline, cancels through the API of runs not ended yet.
 *
 * A fault hits where runs are: at its time it waits (up to 5 s) for some run
 * to be leased (a SIGSTOP: still CLAIMED), then takes the worker (or the
 * server whose workers) holding the most; the seeded target breaks ties.
 */
import { sweepGraceMs } from '../../src/server/lifecycle-sweeper.js';
import type { Api } from './api.js';
import { leasedRuns, leasesByWorker, liveRuns } from './db.js';
import { healthz, type Deployment } from './deployment.js';
import type { Rng } from './random.js';
import type { Submission } from './workload.js';

export const FAULT_KINDS = ['worker_kill', 'server_kill', 'worker_stop', 'pg_restart'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultPlan {
  kind: FaultKind;
  atMs: number;
  /** Worker or server index. */
  target: number;
  /** How long the target stays down (killed, frozen, stopped). */
  downMs: number;
}

export interface FaultRecord {
  plan: FaultPlan;
  target: string;
  /** Epoch ms: the fault, and the end of it (restarted, continued, started). */
  at: number;
  resumedAt: number | null;
  /** Servers answering /healthz 200 again (server_kill, pg_restart). */
  healthyAt: number | null;
  /** What /healthz answered while PostgreSQL was down, per server. */
  duringOutage: (number | null)[];
  /** Runs leased by the faulted worker(s) at the fault. */
  heldRuns: string[];
  error: string | null;
}

export interface CancelRecord {
  runId: string;
  kind: string;
  at: number;
  status: number | null;
  error: string | null;
}

export interface FaultCounts {
  worker_kill: number;
  server_kill: number;
  worker_stop: number;
  pg_restart: number;
}

/** How long a fault keeps its slot (down time plus recovery), to space them. */
function span(plan: Omit<FaultPlan, 'atMs'>): number {
  return plan.downMs + 4000;
}

/** The serialized fault schedule within [startMs, windowMs). */
export function planFaults(rng: Rng, counts: FaultCounts, deployment: { servers: number; workers: number; leaseTtlMs: number }, startMs: number, windowMs: number): FaultPlan[] {
  const kinds = rng.shuffle(FAULT_KINDS.flatMap((kind) => Array.from({ length: counts[kind] }, () => kind)));
  const stopMs = deployment.leaseTtlMs + sweepGraceMs(deployment.leaseTtlMs) + 500;
  const plans: Omit<FaultPlan, 'atMs'>[] = kinds.map((kind) => {
    switch (kind) {
      case 'worker_kill':
        return { kind, target: rng.int(0, deployment.workers - 1), downMs: rng.int(1000, 4000) };
      case 'server_kill':
        return { kind, target: rng.int(0, deployment.servers - 1), downMs: rng.int(1000, 3000) };
      case 'worker_stop':
        return { kind, target: rng.int(0, deployment.workers - 1), downMs: stopMs + rng.int(1000, 4000) };
      case 'pg_restart':
        return { kind, target: 0, downMs: rng.int(1000, 4000) };
    }
  });
  const slot = (windowMs - startMs) / Math.max(1, plans.length);
  return plans.map((plan, i) => ({ ...plan, atMs: Math.floor(startMs + i * slot + rng.next() * Math.max(0, slot - span(plan))) }));
}

/** `count` cancels at seeded times in [startMs, windowMs); which run is picked at the time (`pick` in [0, 1)). */
export function planCancels(rng: Rng, count: number, startMs: number, windowMs: number): { atMs: number; pick: number }[] {
  return Array.from({ length: count }, () => ({ atMs: Math.floor(startMs + rng.next() * (windowMs - startMs)), pick: rng.next() })).sort((a, b) => a.atMs - b.atMs);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function untilHealthy(urls: string[], timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const codes = await Promise.all(urls.map(healthz));
    if (codes.every((c) => c === 200)) return Date.now();
    await sleep(100);
  }
  return null;
}

async function safeLeased(deployment: Deployment, workerIds?: string[]): Promise<string[]> {
  try {
    return await leasedRuns(deployment.databaseUrl, workerIds);
  } catch {
    return [];
  }
}

function currentId(deployment: Deployment, worker: number): string[] {
  const slot = deployment.workers[worker];
  const pid = slot?.process.pid;
  const id = pid !== null && pid !== undefined ? slot?.ids.get(pid) : undefined;
  return id ? [id] : [];
}

/** Leased runs per worker slot now (by the slot's current worker id), and how many are still CLAIMED. */
async function leasesPerWorker(deployment: Deployment): Promise<{ leased: number; claimed: number }[]> {
  try {
    const byId = await leasesByWorker(deployment.databaseUrl);
    return deployment.workers.map((_, i) =>
      currentId(deployment, i).reduce((sum, id) => ({ leased: sum.leased + (byId.get(id)?.leased ?? 0), claimed: sum.claimed + (byId.get(id)?.claimed ?? 0) }), {
        leased: 0,
        claimed: 0,
      }),
    );
  } catch {
    return deployment.workers.map(() => ({ leased: 0, claimed: 0 }));
  }
}

/** The index with the highest count; ties go to the first from `preferred` on. */
function busiest(counts: number[], preferred: number): number {
  let best = preferred % counts.length;
  for (let k = 0; k < counts.length; k++) {
    const i = (preferred + k) % counts.length;
    if ((counts[i] ?? 0) > (counts[best] ?? 0)) best = i;
  }
  return best;
}

/**
 * Retarget the plan where runs are: wait (up to 5 s) until some run is
 * leased, and for a SIGSTOP until some worker holds a run still CLAIMED (its
 * lease lapsing then re-queues the run, so another worker starts it while the
 * frozen one's sandbox may still exist: the case the fence is for).
 */
async function aim(deployment: Deployment, plan: FaultPlan): Promise<FaultPlan> {
  if (plan.kind === 'pg_restart') return plan;
  const deadline = Date.now() + 5000;
  const ready = (c: { leased: number; claimed: number }[]): boolean => (plan.kind === 'worker_stop' ? c.some((w) => w.claimed > 0) : c.some((w) => w.leased > 0));
  let counts = await leasesPerWorker(deployment);
  while (!ready(counts) && Date.now() < deadline) {
    await sleep(plan.kind === 'worker_stop' ? 50 : 250);
    counts = await leasesPerWorker(deployment);
  }
  if (plan.kind === 'server_kill') {
    const perServer = deployment.servers.map((_, s) => deployment.workers.reduce((n, w, i) => n + (w.server === s ? (counts[i]?.leased ?? 0) : 0), 0));
    return { ...plan, target: busiest(perServer, plan.target) };
  }
  const score = counts.map((c) => (plan.kind === 'worker_stop' ? c.claimed * 100 : 0) + c.leased);
  return { ...plan, target: busiest(score, plan.target) };
}

async function inject(deployment: Deployment, planned: FaultPlan, log: (line: string) => void): Promise<FaultRecord> {
  const plan = await aim(deployment, planned);
  const record: FaultRecord = { plan, target: '', at: Date.now(), resumedAt: null, healthyAt: null, duringOutage: [], heldRuns: [], error: null };
  const serverUrls = deployment.servers.map((s) => s.url);
  try {
    switch (plan.kind) {
      case 'worker_kill': {
        const slot = deployment.workers[plan.target];
        if (!slot) throw new Error(`no worker ${plan.target}`);
        record.target = `${slot.process.name} (pid ${slot.process.pid})`;
        record.heldRuns = await safeLeased(deployment, currentId(deployment, plan.target));
        record.at = Date.now();
        await slot.process.kill9();
        log(`kill -9 ${record.target}, ${record.heldRuns.length} runs leased; restart in ${plan.downMs} ms`);
        await sleep(plan.downMs);
        await deployment.startWorker(plan.target);
        record.resumedAt = Date.now();
        break;
      }
      case 'server_kill': {
        const slot = deployment.servers[plan.target];
        if (!slot) throw new Error(`no server ${plan.target}`);
        record.target = `${slot.process.name} (pid ${slot.process.pid})`;
        const attached = deployment.workers.filter((w) => w.server === plan.target).flatMap((w) => currentId(deployment, deployment.workers.indexOf(w)));
        record.heldRuns = await safeLeased(deployment, attached);
        record.at = Date.now();
        await slot.process.kill9();
        log(`kill -9 ${record.target}, its workers lease ${record.heldRuns.length} runs; restart in ${plan.downMs} ms`);
        await sleep(plan.downMs);
        slot.process.start();
        record.resumedAt = Date.now();
        record.healthyAt = await untilHealthy([slot.url], 30_000);
        if (record.healthyAt === null) record.error = `${slot.process.name} did not answer /healthz 200 within 30 s of its restart`;
        break;
      }
      case 'worker_stop': {
        const slot = deployment.workers[plan.target];
        if (!slot) throw new Error(`no worker ${plan.target}`);
        record.target = `${slot.process.name} (pid ${slot.process.pid})`;
        record.heldRuns = await safeLeased(deployment, currentId(deployment, plan.target));
        record.at = Date.now();
        slot.process.signal('SIGSTOP');
        log(`SIGSTOP ${record.target} for ${plan.downMs} ms, ${record.heldRuns.length} runs leased`);
        await sleep(plan.downMs);
        slot.process.signal('SIGCONT');
        record.resumedAt = Date.now();
        break;
      }
      case 'pg_restart': {
        record.target = `PostgreSQL (pid ${deployment.pg.pid()})`;
        record.heldRuns = await safeLeased(deployment);
        record.at = Date.now();
        await deployment.pg.stop('fast');
        log(`PostgreSQL stopped (fast), ${record.heldRuns.length} runs leased; start in ${plan.downMs} ms`);
        await sleep(Math.min(1000, plan.downMs / 2));
        record.duringOutage = await Promise.all(serverUrls.map(healthz));
        await sleep(plan.downMs - Math.min(1000, plan.downMs / 2));
        await deployment.pg.start();
        record.resumedAt = Date.now();
        record.healthyAt = await untilHealthy(serverUrls, 30_000);
        if (record.healthyAt === null) record.error = 'the servers did not all answer /healthz 200 within 30 s of PostgreSQL starting again';
        break;
      }
    }
  } catch (error) {
    record.error = String(error);
  }
  return record;
}

/** Run the schedule from `startedAt`; a fault that ends late pushes the next one back (never two at once). */
export async function injectAll(
  deployment: Deployment,
  plans: readonly FaultPlan[],
  startedAt: number,
  log: (line: string) => void,
  stopped: () => boolean,
): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  for (const plan of plans) {
    await sleep(startedAt + plan.atMs - Date.now());
    if (stopped()) break;
    records.push(await inject(deployment, plan, log));
  }
  return records;
}

/** Cancel, at each planned time, one of the submitted runs that has not ended (any state: queued, pending, leased). */
export async function cancelAll(
  api: Api,
  databaseUrl: string,
  plans: readonly { atMs: number; pick: number }[],
  submissions: readonly Submission[],
  startedAt: number,
  stopped: () => boolean,
): Promise<CancelRecord[]> {
  const records: CancelRecord[] = [];
  const cancelled = new Set<string>();
  for (const plan of plans) {
    await sleep(startedAt + plan.atMs - Date.now());
    if (stopped()) break;
    const submitted = submissions.filter((s) => s.runId && !cancelled.has(s.runId)).map((s) => s.runId as string);
    const live = new Set(
      await liveRuns(databaseUrl, submitted)
        .then((rows) => rows.map((r) => r.id))
        .catch(() => submitted.slice(-6)),
    );
    const candidates = submissions.filter((s) => s.runId && live.has(s.runId));
    if (candidates.length === 0) continue;
    const target = candidates[Math.floor(plan.pick * candidates.length)] as Submission;
    const runId = target.runId as string;
    cancelled.add(runId);
    const at = Date.now();
    try {
      const answer = await api.call('POST', `/api/v1/agent/runs/${runId}/cancel`, { deadlineMs: 10_000 });
      records.push({ runId, kind: target.plan.kind, at, status: answer.status, error: answer.status === 200 ? null : JSON.stringify(answer.body) });
    } catch (error) {
      records.push({ runId, kind: target.plan.kind, at, status: null, error: String(error) });
    }
  }
  return records;
}
