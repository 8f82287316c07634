/**
 * The invariants, checked from the database snapshot and from the host's
 * sandbox sightings. Each finding is a {@link Violation} of a named kind.
 *
 * An *attempt* of a run is the stretch of its event stream from a
 * PENDING→CLAIMED state event to the next state event that ends the lease
 * (CLAIMED→PENDING, the sweeper's re-queue, or a terminal state). State
 * events carry no lease token, but every worker event batch is recorded with
 * its token (`run_event_batches`), so "two live attempts" shows as two tokens
 * writing within one attempt, a token writing across attempts, or a write
 * outside any attempt; and on the host as two sandboxes of one run at once,
 * or a sandbox outliving its attempt.
 */
import { isLegalTransition, isRunState, isTerminal, type RunState } from '../../src/core/run-state.js';
import type { SandboxSighting, ConcurrentSighting } from './sampler.js';
import type { EventRow, Snapshot } from './snapshot.js';
import { MARKER_PATTERN, type Submission } from './workload.js';

/** A sandbox is seen up to one sampling period after it appears. */
const SAMPLE_SLACK_MS = 250;

export interface Violation {
  kind: string;
  runId: string | null;
  detail: string;
}

export interface Attempt {
  claimSeq: number;
  claimAt: number;
  /** The state event that ended the lease; null while it is still held. */
  endSeq: number | null;
  endAt: number | null;
  endTo: RunState | null;
}

function stateOf(event: EventRow): { from: string | null; to: string } | null {
  if (event.type !== 'state') return null;
  const from = event.data.from;
  const to = event.data.to;
  if (typeof to !== 'string') return null;
  return { from: typeof from === 'string' ? from : null, to };
}

export function attemptsOf(events: readonly EventRow[]): Attempt[] {
  const attempts: Attempt[] = [];
  for (const event of events) {
    const state = stateOf(event);
    if (!state) continue;
    const open = attempts.at(-1);
    if (state.to === 'CLAIMED') {
      attempts.push({ claimSeq: event.seq, claimAt: event.at, endSeq: null, endAt: null, endTo: null });
    } else if (open && open.endSeq === null && (state.to === 'PENDING' || (isRunState(state.to) && isTerminal(state.to)))) {
      Object.assign(open, { endSeq: event.seq, endAt: event.at, endTo: state.to });
    }
  }
  return attempts;
}

/** The attempt whose seq window holds `seq`, or null. */
function attemptAt(attempts: readonly Attempt[], seq: number): number | null {
  for (let i = attempts.length - 1; i >= 0; i--) {
    const a = attempts[i] as Attempt;
    if (seq > a.claimSeq && (a.endSeq === null || seq < a.endSeq)) return i;
  }
  return null;
}

/** Submissions: every run made, once; no run the harness did not ask for. */
export function checkSubmissions(submissions: readonly Submission[], snapshot: Snapshot): Violation[] {
  const out: Violation[] = [];
  const ids = new Set<string>();
  for (const s of submissions) {
    if (!s.runId) out.push({ kind: 'submit_failed', runId: null, detail: `run ${s.plan.index} (${s.plan.kind}) not created after ${s.tries} tries: ${s.error ?? ''}` });
    else if (ids.has(s.runId)) out.push({ kind: 'duplicate_run', runId: s.runId, detail: `two submissions got the same run` });
    else ids.add(s.runId);
  }
  for (const id of snapshot.runs.keys())
    if (!ids.has(id)) out.push({ kind: 'duplicate_run', runId: id, detail: 'a run the harness did not submit (an idempotent retry made a second one?)' });
  return out;
}

/** Event streams: ended, gap-free, legal, nothing after the end, one lease per attempt. */
export function checkEvents(snapshot: Snapshot): Violation[] {
  const out: Violation[] = [];
  for (const run of snapshot.runs.values()) {
    const v = (kind: string, detail: string): void => void out.push({ kind, runId: run.id, detail });
    const events = snapshot.events.get(run.id) ?? [];
    if (!isRunState(run.state) || !isTerminal(run.state)) v('not_terminal', `state ${run.state} at the end (attempt ${run.attempt})`);

    const seqs = events.map((e) => e.seq);
    const holes = seqs.map((seq, i) => (seq === i + 1 ? null : `position ${i + 1} has seq ${seq}`)).filter((x) => x !== null);
    if (holes.length > 0 || seqs.length !== run.lastEventSeq) v('event_seq_gap', `${seqs.length} events, last_event_seq ${run.lastEventSeq}; ${holes.slice(0, 3).join(', ')}`);

    let previous: string | null = null;
    let terminalSeq: number | null = null;
    for (const event of events) {
      if (terminalSeq !== null && event.seq > terminalSeq) {
        v('event_after_terminal', `${event.type} event seq ${event.seq} after the terminal state event seq ${terminalSeq}`);
        break;
      }
      const state = stateOf(event);
      if (!state) continue;
      if (previous === null) {
        if (state.from !== null || state.to !== 'QUEUED') v('illegal_transition', `first state event seq ${event.seq} is ${state.from} → ${state.to}, not (new) → QUEUED`);
      } else {
        if (state.from !== previous) v('state_chain_break', `seq ${event.seq}: ${state.from} → ${state.to}, but the run was ${previous}`);
        if (!isRunState(state.from) || !isRunState(state.to) || !isLegalTransition(state.from, state.to)) v('illegal_transition', `seq ${event.seq}: ${state.from} → ${state.to}`);
      }
      previous = state.to;
      if (isRunState(state.to) && isTerminal(state.to)) terminalSeq = event.seq;
    }
    if (previous !== null && previous !== run.state) v('state_mismatch', `the last state event says ${previous}, the run row ${run.state}`);

    const attempts = attemptsOf(events);
    if (attempts.length !== run.attempt) v('attempt_mismatch', `${attempts.length} claims in the events, attempt ${run.attempt} on the run`);
    const tokensOf = new Map<number, Set<string>>();
    const attemptsOfToken = new Map<string, Set<number>>();
    for (const batch of snapshot.batches.get(run.id) ?? []) {
      const token = `${batch.leaseToken.slice(0, 6)}…`;
      const first = attemptAt(attempts, batch.firstSeq);
      const last = attemptAt(attempts, batch.firstSeq + batch.count - 1);
      if (first === null || last !== first) {
        v('write_outside_lease', `batch ${batch.batchNo} of lease ${token} (seq ${batch.firstSeq}–${batch.firstSeq + batch.count - 1}) is not inside one attempt`);
        continue;
      }
      tokensOf.set(first, (tokensOf.get(first) ?? new Set()).add(batch.leaseToken));
      attemptsOfToken.set(batch.leaseToken, (attemptsOfToken.get(batch.leaseToken) ?? new Set()).add(first));
    }
    for (const [attempt, tokens] of tokensOf) if (tokens.size > 1) v('two_live_attempts', `attempt ${attempt + 1}: ${tokens.size} lease tokens wrote events`);
    for (const [token, within] of attemptsOfToken)
      if (within.size > 1) v('two_live_attempts', `lease ${token.slice(0, 6)}… wrote in attempts ${[...within].map((a) => a + 1).join(', ')}`);

    // Executions, by the marker each one prints first.
    const nonces = new Map<number, Set<string>>();
    for (const event of events) {
      if (event.type !== 'output' || typeof event.data.text !== 'string') continue;
      for (const match of event.data.text.matchAll(MARKER_PATTERN)) {
        const [, markerRun, nonce] = match;
        if (markerRun !== run.id) v('foreign_marker', `seq ${event.seq} holds the marker of run ${markerRun}`);
        const attempt = attemptAt(attempts, event.seq);
        if (attempt === null) continue; // reported as write_outside_lease
        nonces.set(attempt, (nonces.get(attempt) ?? new Set()).add(nonce as string));
      }
    }
    for (const [attempt, set] of nonces) if (set.size > 1) v('two_executions', `attempt ${attempt + 1} printed ${set.size} different markers (executions)`);
  }
  return out;
}

/** Publishing: at most one artifact per run; at most one push per branch; every pushed branch on its run's record; each branch holds its own run's marker. */
export function checkPublishing(snapshot: Snapshot, publishing: ReadonlySet<string>): Violation[] {
  const out: Violation[] = [];
  const branches = new Map(snapshot.branches.map((b) => [b.runId, b]));
  for (const [runId, types] of snapshot.artifacts) {
    const published = types.filter((t) => t === 'BRANCH' || t === 'PULL_REQUEST');
    if (published.length > 1) out.push({ kind: 'double_publish', runId, detail: `${published.length} artifacts: ${published.join(', ')}` });
    // The artifact is recorded before the push (a run lost in between names a branch it never pushed): only a SUCCEEDED run must have it.
    if (types.includes('BRANCH') && !branches.has(runId) && snapshot.runs.get(runId)?.state === 'SUCCEEDED') {
      out.push({ kind: 'artifact_without_branch', runId, detail: 'SUCCEEDED with a BRANCH artifact, but no such branch on the remote' });
    }
  }
  for (const branch of snapshot.branches) {
    const run = snapshot.runs.get(branch.runId);
    if (!run) out.push({ kind: 'unknown_branch', runId: branch.runId, detail: `branch oz/${branch.runId} of no run` });
    else if (!(snapshot.artifacts.get(branch.runId) ?? []).includes('BRANCH'))
      out.push({ kind: 'branch_without_artifact', runId: branch.runId, detail: `oz/${branch.runId} is on the remote, but the run (${run.state}) does not name it` });
    if (branch.updates > 1) out.push({ kind: 'double_publish', runId: branch.runId, detail: `the remote's reflog has ${branch.updates} updates of oz/${branch.runId}` });
    if (!branch.marker.includes(`run=${branch.runId} `))
      out.push({ kind: 'foreign_publish', runId: branch.runId, detail: `marker.txt on the branch: ${branch.marker.slice(0, 120)}` });
  }
  for (const runId of publishing) {
    const run = snapshot.runs.get(runId);
    if (run?.state === 'SUCCEEDED' && !(snapshot.artifacts.get(runId) ?? []).includes('BRANCH')) {
      out.push({ kind: 'missing_publish', runId, detail: 'SUCCEEDED after changing marker.txt, but no BRANCH artifact' });
    }
  }
  return out;
}

/**
 * The host: no two sandboxes of one run at once; no sandbox made after the
 * state event that ended its attempt (re-queue or terminal), nor seen later
 * than `toleranceMs` after it. The tolerance covers the sampling period and the teardown of a
 * pid namespace; a worker writes its own terminal state only after its
 * sandbox is destroyed, so a healthy run needs none of it.
 */
export function checkHost(snapshot: Snapshot, sightings: Iterable<SandboxSighting>, concurrent: readonly ConcurrentSighting[], toleranceMs: number, origin: number): Violation[] {
  const out: Violation[] = [];
  const rel = (t: number): string => `+${((t - origin) / 1000).toFixed(1)} s`;
  const firstConcurrent = new Map<string, { sample: ConcurrentSighting; count: number }>();
  for (const sample of concurrent) {
    const seen = firstConcurrent.get(sample.runId);
    if (seen) seen.count++;
    else firstConcurrent.set(sample.runId, { sample, count: 1 });
  }
  for (const [runId, { sample, count }] of firstConcurrent) {
    out.push({ kind: 'two_sandboxes', runId, detail: `${sample.uids.length} sandboxes (uids ${sample.uids.join(', ')}) at ${rel(sample.at)}, in ${count} samples` });
  }
  for (const s of sightings) {
    const run = snapshot.runs.get(s.runId);
    if (!run) continue; // not a run of this deployment
    const attempts = attemptsOf(snapshot.events.get(s.runId) ?? []);
    const attempt = [...attempts].reverse().find((a) => a.claimAt <= s.firstSeen);
    const where = `sandbox uid ${s.uid} of worker pid ${s.workerPid ?? '?'} seen ${rel(s.firstSeen)}–${rel(s.lastSeen)}`;
    if (!attempt) {
      out.push({ kind: 'sandbox_without_claim', runId: s.runId, detail: `${where}, before any claim` });
      continue;
    }
    if (attempt.endAt !== null && s.firstSeen > attempt.endAt + SAMPLE_SLACK_MS) {
      out.push({
        kind: 'sandbox_started_after_lease',
        runId: s.runId,
        detail: `${where}; the attempt had ended (${attempt.endTo}) at ${rel(attempt.endAt)}, before the sandbox appeared`,
      });
    } else if (attempt.endAt !== null && s.lastSeen > attempt.endAt + toleranceMs) {
      const terminal = attempt.endTo !== null && attempt.endTo !== 'PENDING';
      out.push({
        kind: terminal ? 'sandbox_after_terminal' : 'sandbox_outlived_attempt',
        runId: s.runId,
        detail: `${where}; the attempt ended (${attempt.endTo}) at ${rel(attempt.endAt)}, ${((s.lastSeen - attempt.endAt) / 1000).toFixed(1)} s earlier`,
      });
    }
  }
  return out;
}
