import type { Kysely } from 'kysely';
import { isTerminal, type RunState } from '../core/run-state.js';
import type { RunStatusMessage, RunUsage } from '../core/run.js';
import type { Database } from './schema.js';
import type { RunRow } from './rows.js';

type ExecutionOf = Pick<RunRow, 'id' | 'execution' | 'worker_id' | 'worker_name'>;

/**
 * Keeps `run_executions` in step with the run's row, inside the transaction
 * that moves the run: the latest execution's state is always the run's, so
 * the two cannot disagree. A follow-up's re-queue inserts the next
 * execution; every other change updates the latest one.
 */
export async function recordExecutionIn(
  tx: Kysely<Database>,
  row: ExecutionOf,
  from: RunState,
  to: RunState,
  at: number,
  outcome: { statusMessage?: RunStatusMessage | null | undefined; usage?: RunUsage | undefined } = {},
): Promise<void> {
  const number = Number(row.execution);
  if (to === 'QUEUED' && isTerminal(from)) {
    await tx.insertInto('run_executions').values({ run_id: row.id, number, state: 'QUEUED', created_at: at }).execute();
    return;
  }
  const ended = isTerminal(to);
  await tx
    .updateTable('run_executions')
    .set((eb) => ({
      state: to,
      ...(to === 'CLAIMED' ? { worker_id: row.worker_id, worker_name: row.worker_name, claimed_at: at } : {}),
      ...(to === 'PENDING' ? { worker_id: null, worker_name: null, claimed_at: null } : {}),
      ...(to === 'INPROGRESS' ? { started_at: eb.fn.coalesce('started_at', eb.val(at)) } : {}),
      ...(ended ? { ended_at: at } : {}),
      ...(ended && outcome.statusMessage ? { status_message: JSON.stringify(outcome.statusMessage) } : {}),
      ...(ended && outcome.usage ? { usage: JSON.stringify(outcome.usage) } : {}),
    }))
    .where('run_id', '=', row.id)
    .where('number', '=', number)
    .execute();
}

/** The claim's side of it: each claimed run's latest execution is CLAIMED by that worker. */
export async function recordClaimsIn(tx: Kysely<Database>, rows: readonly ExecutionOf[], at: number): Promise<void> {
  for (const row of rows) await recordExecutionIn(tx, row, 'PENDING', 'CLAIMED', at);
}
