/**
 * The harness's tables: faults injected and how long the deployment took to
 * recover from each, runs by kind and final state (with the reasons given),
 * violations by kind with their runs, and the event timelines of the runs
 * that broke an invariant.
 */
import { ms, stats, table } from '../support.js';
import { attemptsOf, type Violation } from './checks.js';
import type { CancelRecord, FaultRecord } from './faults.js';
import type { SandboxSighting } from './sampler.js';
import type { Snapshot } from './snapshot.js';
import { RUN_KINDS, type Submission } from './workload.js';

const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

/** Times in ms after `from` of the first state event of any run to `to` (any, when omitted) at or after it. */
function firstStateAfter(snapshot: Snapshot, from: number, runIds: Iterable<string> | null, to: string | null): number | null {
  let best: number | null = null;
  const ids = runIds ? [...runIds] : [...snapshot.events.keys()];
  for (const id of ids) {
    for (const event of snapshot.events.get(id) ?? []) {
      if (event.type !== 'state' || event.at < from) continue;
      if (to !== null && event.data.to !== to) continue;
      if (best === null || event.at < best) best = event.at;
      break;
    }
  }
  return best === null ? null : best - from;
}

/** For each held run, how long until its state moved after the fault; the slowest. */
function heldResolvedMs(snapshot: Snapshot, record: FaultRecord): number | null {
  const times = record.heldRuns.map((id) => firstStateAfter(snapshot, record.at, [id], null)).filter((t): t is number => t !== null);
  return times.length ? Math.max(...times) : null;
}

/** Held runs whose lease the sweeper resolved after the fault (re-queued, ERROR worker_lost, cancelled at expiry): the run lost its worker. */
function heldLost(snapshot: Snapshot, record: FaultRecord): number {
  return record.heldRuns.filter((id) =>
    (snapshot.events.get(id) ?? []).some((e) => {
      if (e.type !== 'state' || e.at < record.at) return false;
      const reason = (e.data.status_message as { reason?: string } | undefined)?.reason;
      return (e.data.from === 'CLAIMED' && e.data.to === 'PENDING') || reason === 'worker_lost' || reason === 'cancelled_lease_expired';
    }),
  ).length;
}

const seconds = (values: number[]): string => {
  if (values.length === 0) return '–';
  const s = stats(values);
  return values.length === 1 ? `${ms(s.p50 / 1000)}` : `${ms(s.p50 / 1000)} / ${ms(s.max / 1000)}`;
};

export function faultTable(records: readonly FaultRecord[], cancels: readonly CancelRecord[], snapshot: Snapshot): string {
  const kinds = [...new Set(records.map((r) => r.plan.kind))];
  const rows = kinds.map((kind) => {
    const of = records.filter((r) => r.plan.kind === kind);
    const healthy = of.map((r) => (r.healthyAt === null ? null : r.healthyAt - r.at)).filter((x): x is number => x !== null);
    const held = of.map((r) => heldResolvedMs(snapshot, r)).filter((x): x is number => x !== null);
    const nextClaim = of.map((r) => firstStateAfter(snapshot, r.at, null, 'CLAIMED')).filter((x): x is number => x !== null);
    const down = of.map((r) => (r.resumedAt ?? r.at) - r.at);
    const heldCount = of.reduce((n, r) => n + r.heldRuns.length, 0);
    const lost = of.reduce((n, r) => n + heldLost(snapshot, r), 0);
    return [kind, String(of.length), String(of.filter((r) => r.error).length), seconds(down), String(heldCount), String(lost), seconds(held), seconds(healthy), seconds(nextClaim)];
  });
  const cancelled = cancels.filter((c) => c.status === 200);
  const toEnd = cancelled.map((c) => firstStateAfter(snapshot, c.at, [c.runId], null)).filter((x): x is number => x !== null);
  const terminalAfter = cancelled
    .map((c) => {
      const end = (snapshot.events.get(c.runId) ?? []).find((e) => e.type === 'state' && typeof e.data.to === 'string' && TERMINAL.includes(e.data.to));
      return end ? end.at - c.at : null;
    })
    .filter((x): x is number => x !== null);
  rows.push(['cancel', String(cancels.length), String(cancels.length - cancelled.length), '–', String(cancelled.length), '–', seconds(toEnd), '–', seconds(terminalAfter)]);
  return table(
    'Faults injected (times in s from the fault, "p50 / max" over the faults of a kind; "lost": held runs the sweeper resolved; cancel: refused = not 200, then accepted ones, their first state change and terminal state)',
    ['fault', 'n', 'failed', 'down', 'runs held', 'lost', 'held runs moved after', '/healthz 200 after', 'next claim after'],
    rows,
    [false, true, true, true, true, true, true, true, true],
  );
}

export function runTable(submissions: readonly Submission[], snapshot: Snapshot): string {
  const states = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED', 'not terminal'];
  const rows = RUN_KINDS.map((kind) => {
    const runs = submissions.filter((s) => s.plan.kind === kind && s.runId).map((s) => snapshot.runs.get(s.runId as string));
    const count = (state: string): number => runs.filter((r) => (state === 'not terminal' ? !r || !TERMINAL.includes(r.state) : r?.state === state)).length;
    return [kind, String(runs.length), ...states.map((s) => String(count(s))), String(runs.filter((r) => (r?.attempt ?? 0) > 1).length)];
  });
  return table('Runs by kind and final state', ['kind', 'runs', ...states, 're-claimed'], rows, [false, ...Array<boolean>(states.length + 2).fill(true)]);
}

export function reasonTable(snapshot: Snapshot): string {
  const counts = new Map<string, number>();
  for (const run of snapshot.runs.values()) {
    if (run.state === 'SUCCEEDED') continue;
    const key = `${run.state}\t${run.statusReason ?? '(none)'}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([key, n]) => [...key.split('\t'), String(n)]);
  return table('Runs that did not succeed, by reason (status_message.reason)', ['state', 'reason', 'runs'], rows, [false, false, true]);
}

export function violationTable(violations: readonly Violation[]): string {
  const kinds = [...new Set(violations.map((v) => v.kind))].sort();
  const rows = kinds.map((kind) => {
    const of = violations.filter((v) => v.kind === kind);
    const runs = [...new Set(of.map((v) => v.runId).filter((r): r is string => r !== null))];
    return [kind, String(of.length), runs.length ? `${runs.slice(0, 4).join(' ')}${runs.length > 4 ? ` (+${runs.length - 4})` : ''}` : (of[0]?.detail.slice(0, 80) ?? '')];
  });
  return table('Violations by kind', ['violation', 'n', 'runs (or the first finding)'], rows.length ? rows : [['(none)', '0', '']], [false, true, false]);
}

/** One run's story: its state events, attempts, lease tokens that wrote, sandboxes seen, and what was found. */
export function timeline(runId: string, snapshot: Snapshot, sightings: readonly SandboxSighting[], violations: readonly Violation[], origin: number): string {
  const rel = (t: number): string => `+${((t - origin) / 1000).toFixed(2)} s`;
  const lines = [`run ${runId}`];
  for (const v of violations.filter((x) => x.runId === runId)) lines.push(`  ! ${v.kind}: ${v.detail}`);
  const events = snapshot.events.get(runId) ?? [];
  for (const e of events) {
    if (e.type !== 'state') continue;
    const status = e.data.status_message as { reason?: string } | undefined;
    lines.push(`  ${rel(e.at).padStart(10)}  seq ${String(e.seq).padStart(3)}  ${String(e.data.from)} → ${String(e.data.to)}${status?.reason ? ` (${status.reason})` : ''}`);
  }
  const attempts = attemptsOf(events);
  const tokens = new Map<string, number[]>();
  for (const b of snapshot.batches.get(runId) ?? []) tokens.set(b.leaseToken, [...(tokens.get(b.leaseToken) ?? []), b.firstSeq]);
  lines.push(
    `  ${attempts.length} attempt(s); ${tokens.size} lease token(s) wrote batches: ${[...tokens].map(([t, seqs]) => `${t.slice(0, 6)}… at seq ${seqs[0]}–`).join(', ') || 'none'}`,
  );
  for (const s of sightings.filter((x) => x.runId === runId)) lines.push(`  sandbox uid ${s.uid} (worker pid ${s.workerPid ?? '?'}) seen ${rel(s.firstSeen)} – ${rel(s.lastSeen)}`);
  return lines.join('\n');
}
