import { sql, type Kysely, type Selectable } from 'kysely';
import { LEASED_STATES, type RunState } from '../core/run-state.js';
import type { RunStatusMessage } from '../core/run.js';
import type { SeenWorker } from '../core/worker-pool.js';
import type { Database, WorkersTable } from './schema.js';
import type { StoreContext } from './store-context.js';

/** What a claim tells of its worker (src/core/worker-protocol.ts `WorkerProfile`), and the token it used. */
export type WorkerSighting = Omit<SeenWorker, 'firstSeenAt' | 'lastSeenAt'>;

/** A worker with the runs it holds now (a leased state, the lease not expired). */
export interface ListedWorker extends SeenWorker {
  runningRuns: number;
}

/** A routed run that is still waiting (QUEUED or PENDING), with its status message as stored (for a compare-and-set). */
export interface RoutedWaitingRun {
  id: string;
  teamId: string;
  state: 'QUEUED' | 'PENDING';
  workerHost: string;
  statusMessage: RunStatusMessage | null;
  /** The stored text of the status message: what a compare-and-set expects. */
  statusMessageText: string | null;
}

/** A heartbeat refreshes a worker's `last_seen_at` at most this often (it is read in minutes). */
const TOUCH_EVERY_MS = 5000;

function toSeenWorker(row: Selectable<WorkersTable>): SeenWorker {
  return {
    id: row.id,
    name: row.name,
    labels: JSON.parse(row.labels) as string[],
    backend: row.backend,
    capacity: Number(row.capacity),
    version: row.version,
    tokenName: row.token_name,
    firstSeenAt: Number(row.first_seen_at),
    lastSeenAt: Number(row.last_seen_at),
  };
}

/** Workers seen since `since` (their last claim or heartbeat), inside any transaction. */
export async function workersSeenSince(db: Kysely<Database>, since: number): Promise<SeenWorker[]> {
  const rows = await db.selectFrom('workers').selectAll().where('last_seen_at', '>', since).orderBy('name').orderBy('id').execute();
  return rows.map(toSeenWorker);
}

/**
 * Worker pools (docs/api.md "Worker pools"): the workers as their claims
 * describe them, and the routed runs that wait for one. Every write is one
 * statement that is right whichever server makes it, in any order.
 */
export class WorkerRepository {
  constructor(private readonly ctx: StoreContext) {}

  /** Upsert a worker on a claim poll: what it says of itself replaces what it said before; first seen is kept. */
  async record(worker: WorkerSighting, at: number): Promise<void> {
    const fields = {
      name: worker.name,
      labels: JSON.stringify(worker.labels),
      backend: worker.backend,
      capacity: worker.capacity,
      version: worker.version,
      token_name: worker.tokenName,
      last_seen_at: at,
    };
    await this.ctx.db
      .insertInto('workers')
      .values({ id: worker.id, ...fields, first_seen_at: at })
      .onConflict((oc) => oc.column('id').doUpdateSet(fields))
      .execute();
  }

  /** A heartbeat of one of its runs: the worker is still there (written at most every few seconds). */
  async touch(id: string, at: number): Promise<void> {
    await this.ctx.db
      .updateTable('workers')
      .set({ last_seen_at: at })
      .where('id', '=', id)
      .where('last_seen_at', '<', at - TOUCH_EVERY_MS)
      .execute();
  }

  seenSince(since: number): Promise<SeenWorker[]> {
    return workersSeenSince(this.ctx.db, since);
  }

  /** Every worker still remembered, most recently seen first, with the runs each holds at `at`. */
  async list(at: number): Promise<ListedWorker[]> {
    const rows = await this.ctx.db.selectFrom('workers').selectAll().orderBy('last_seen_at', 'desc').orderBy('id').execute();
    const held = await this.ctx.db
      .selectFrom('runs')
      .select((eb) => ['worker_id', eb.fn.countAll<number>().as('n')])
      .where('lease_expires_at', '>', at)
      .where('state', 'in', LEASED_STATES as RunState[])
      .groupBy('worker_id')
      .execute();
    const running = new Map(held.map((h) => [h.worker_id, Number(h.n)]));
    return rows.map((row) => ({ ...toSeenWorker(row), runningRuns: running.get(row.id) ?? 0 }));
  }

  /** Forget workers not seen since `seenBefore`; returns how many. */
  async forget(seenBefore: number): Promise<number> {
    const result = await this.ctx.db.deleteFrom('workers').where('last_seen_at', '<', seenBefore).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Routed runs still waiting (QUEUED or PENDING), oldest first, at most `limit` (through `runs_waiting_host`); with `runId`, that one only. */
  async waitingRuns(options: { limit?: number; runId?: string } = {}): Promise<RoutedWaitingRun[]> {
    let query = this.ctx.db
      .selectFrom('runs')
      .select(['id', 'team_id', 'state', 'worker_host', 'status_message'])
      .where('worker_host', 'is not', null)
      .where('state', 'in', ['QUEUED', 'PENDING']);
    if (options.runId !== undefined) query = query.where('id', '=', options.runId);
    const rows = await query
      .orderBy('id')
      .limit(options.limit ?? 1000)
      .execute();
    return rows.map((row) => ({
      id: row.id,
      teamId: row.team_id,
      state: row.state as 'QUEUED' | 'PENDING',
      workerHost: row.worker_host ?? '',
      statusMessage: row.status_message === null ? null : (JSON.parse(row.status_message) as RunStatusMessage),
      statusMessageText: row.status_message,
    }));
  }

  /**
   * Set (or, with null, clear) a waiting run's status message, only if the run
   * is still in the state and still has the status message it was read with:
   * a compare-and-set, so two servers never overwrite each other and a run
   * that moved on meanwhile is left alone. True when it was written.
   */
  async setWaitingMessage(run: Pick<RoutedWaitingRun, 'id' | 'state' | 'statusMessageText'>, message: RunStatusMessage | null, at: number): Promise<boolean> {
    const expected = run.statusMessageText;
    const result = await this.ctx.db
      .updateTable('runs')
      .set((eb) => ({
        status_message: message === null ? null : JSON.stringify(message),
        // Never backwards, as the transitions stamp it (servers' clocks differ by a few ms).
        updated_at: eb.case().when('updated_at', '>', at).then(eb.ref('updated_at')).else(eb.val(at)).end(),
      }))
      .where('id', '=', run.id)
      .where('state', '=', run.state)
      .where(expected === null ? sql<boolean>`status_message IS NULL` : sql<boolean>`status_message = ${expected}`)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}
