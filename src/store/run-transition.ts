import type { Kysely, Updateable } from 'kysely';
import { conflict, notFound, OzError } from '../core/errors.js';
import { actorsOf, isLegalTransition, isTerminal } from '../core/run-state.js';
import type { Run } from '../core/run.js';
import { insertEvents } from './event-writer.js';
import { recordExecutionIn } from './execution-records.js';
import { stateColumn, toRun } from './rows.js';
import type { Database, RunsTable } from './schema.js';
import type { TransitionInput } from './store.js';

/**
 * One compare-and-set on a run's state, inside the caller's transaction:
 *
 *   UPDATE runs SET state = :to, <to>_at = max(:at, updated_at), updated_at = <same>,
 *                   last_event_seq = last_event_seq + 1, …
 *   WHERE id = :id AND state = :from [AND lease_token = :token] [AND lease live | expired]
 *   RETURNING *
 *
 * and the `state` event with the reserved sequence number. Zero rows updated
 * means someone else moved first (or the lease is not ours): a 409, never a
 * silent overwrite. The legality check happens before any SQL.
 */
export async function transitionIn(tx: Kysely<Database>, input: TransitionInput): Promise<Run> {
  const { runId, from, to, at, by } = input;
  if (!isLegalTransition(from, to, by)) {
    const who = isLegalTransition(from, to) ? ` by the ${by} (only the ${actorsOf(from, to).join(' or ')} may)` : '';
    throw new OzError('conflict', `illegal run transition ${from} → ${to}${who}`, { reason: 'illegal_transition' });
  }
  const set: Updateable<RunsTable> = { state: to };
  if (to === 'PENDING') {
    // Re-queued: the old lease is void.
    Object.assign(set, { worker_id: null, worker_name: null, lease_token: null, lease_expires_at: null });
  }
  if (isTerminal(to)) set.lease_expires_at = null;
  const nextExecution = to === 'QUEUED' && isTerminal(from);
  if (nextExecution) {
    // The run's next execution: nothing of the last one's claim, lease or cancel carries over.
    Object.assign(set, { worker_id: null, worker_name: null, lease_token: null, lease_expires_at: null, cancel_requested_at: null, attempt: 0, status_message: null });
  }
  if (input.statusMessage !== undefined) {
    set.status_message = input.statusMessage === null ? null : JSON.stringify(input.statusMessage);
  }
  if (input.usage !== undefined) set.usage = JSON.stringify(input.usage);
  if (input.networkAudit !== undefined) set.network_audit = JSON.stringify(input.networkAudit);

  let query = tx
    .updateTable('runs')
    .set((eb) => {
      // Servers' clocks differ by a few ms: a state is never stamped before
      // the change it follows, so state timestamps are monotonic per run.
      const stamp = eb.case().when('updated_at', '>', at).then(eb.ref('updated_at')).else(eb.val(at)).end();
      return {
        ...set,
        updated_at: stamp,
        [stateColumn(to)]: stamp,
        last_event_seq: eb('last_event_seq', '+', 1),
        ...(nextExecution ? { execution: eb('execution', '+', 1) } : {}),
        ...(to === 'INPROGRESS' ? { started_at: eb.fn.coalesce('started_at', stamp) } : {}),
      };
    })
    .where('id', '=', runId)
    .where('state', '=', from);
  if (input.leaseToken !== undefined) query = query.where('lease_token', '=', input.leaseToken);
  if (input.leaseLiveAt !== undefined) query = query.where('lease_expires_at', '>', input.leaseLiveAt);
  if (input.leaseExpiredBefore !== undefined) query = query.where('lease_expires_at', '<=', input.leaseExpiredBefore);
  if (input.noLiveLeaseAt !== undefined) {
    const liveAt = input.noLiveLeaseAt;
    query = query.where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', liveAt)]));
  }
  const row = await query.returningAll().executeTakeFirst();
  if (!row) throw await explainMiss(tx, input);
  await recordExecutionIn(tx, row, from, to, Number(row.updated_at), { statusMessage: input.statusMessage, usage: input.executionUsage ?? input.usage });

  await insertEvents(tx, runId, Number(row.last_event_seq), [
    {
      type: 'state',
      at: Number(row.updated_at),
      data: { from, to, ...(input.statusMessage ? { status_message: input.statusMessage } : {}) },
    },
  ]);
  return toRun(row);
}

async function explainMiss(tx: Kysely<Database>, input: TransitionInput): Promise<OzError> {
  const current = await tx.selectFrom('runs').select(['state', 'lease_token', 'lease_expires_at']).where('id', '=', input.runId).executeTakeFirst();
  if (!current) return notFound('run', input.runId);
  if (current.state !== input.from) {
    return conflict(`run ${input.runId} is ${current.state}, not ${input.from}`, 'stale_state');
  }
  if (input.leaseToken !== undefined && current.lease_token !== input.leaseToken) {
    return conflict(`run ${input.runId}: lease token is stale`, 'stale_lease');
  }
  if (input.leaseLiveAt !== undefined && (current.lease_expires_at === null || Number(current.lease_expires_at) <= input.leaseLiveAt)) {
    return conflict(`run ${input.runId}: the lease has expired`, 'stale_lease');
  }
  return conflict(`run ${input.runId}: lease is still live`, 'lease_live');
}
