import type { Kysely } from 'kysely';
import { newId } from '../core/ids.js';
import { LEASED_STATES, type RunState } from '../core/run-state.js';
import type { NewRunEvent } from '../core/run-event.js';
import { ARTIFACT_TYPES, type ArtifactType } from '../core/run.js';
import type { Database } from './schema.js';

/**
 * Insert events whose sequence numbers were already reserved by bumping
 * `runs.last_event_seq` in the same transaction: the row lock on the run
 * serializes appenders, so `(run_id, seq)` never collides and never skips.
 * An `artifact` event (`{artifact_type, data}`) is also recorded as the run's
 * artifact, in the same transaction: once, whatever retries the batch had.
 */
export async function insertEvents(tx: Kysely<Database>, runId: string, firstSeq: number, events: readonly NewRunEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx
    .insertInto('run_events')
    .values(
      events.map((event, i) => ({
        run_id: runId,
        seq: firstSeq + i,
        type: event.type,
        at: event.at,
        data: JSON.stringify(event.data),
      })),
    )
    .execute();
  const artifacts = events.filter((event) => event.type === 'artifact' && (ARTIFACT_TYPES as readonly unknown[]).includes(event.data.artifact_type));
  if (artifacts.length === 0) return;
  await tx
    .insertInto('run_artifacts')
    .values(
      artifacts.map((event) => ({
        id: newId(),
        run_id: runId,
        type: event.data.artifact_type as ArtifactType,
        data: JSON.stringify(event.data.data ?? {}),
        created_at: event.at,
      })),
    )
    .execute();
}

/** A worker's claim on the run: its lease token, live at `at`, the run in a leased state. */
export interface LeaseCondition {
  leaseToken: string;
  at: number;
}

/**
 * Reserve `count` sequence numbers for a run's events (bumps `last_event_seq`,
 * taking the run's row lock until the transaction ends). Returns the first, or
 * null when the run does not exist — or, with `lease`, when the lease is not
 * the run's live one: the condition is part of the same UPDATE, so a sweep or
 * finish that commits first makes this match nothing (PostgreSQL re-checks the
 * WHERE on the updated row), and nothing is appended after a terminal state.
 */
export async function reserveEventSeqs(tx: Kysely<Database>, runId: string, count: number, lease?: LeaseCondition): Promise<number | null> {
  let query = tx
    .updateTable('runs')
    .set((eb) => ({ last_event_seq: eb('last_event_seq', '+', count) }))
    .where('id', '=', runId);
  if (lease) {
    query = query
      .where('lease_token', '=', lease.leaseToken)
      .where('state', 'in', LEASED_STATES as RunState[])
      .where('lease_expires_at', '>', lease.at);
  }
  const row = await query.returning('last_event_seq').executeTakeFirst();
  return row ? Number(row.last_event_seq) - count + 1 : null;
}
