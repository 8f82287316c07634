import type { Kysely } from 'kysely';
import { newId } from '../core/ids.js';
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
export async function insertEvents(
  tx: Kysely<Database>,
  runId: string,
  firstSeq: number,
  events: readonly NewRunEvent[],
): Promise<void> {
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

/**
 * Reserve `count` sequence numbers for a run's events (bumps `last_event_seq`,
 * taking the run's row lock until the transaction ends). Returns the first, or
 * null when the run does not exist.
 */
export async function reserveEventSeqs(tx: Kysely<Database>, runId: string, count: number): Promise<number | null> {
  const row = await tx
    .updateTable('runs')
    .set((eb) => ({ last_event_seq: eb('last_event_seq', '+', count) }))
    .where('id', '=', runId)
    .returning('last_event_seq')
    .executeTakeFirst();
  return row ? Number(row.last_event_seq) - count + 1 : null;
}
