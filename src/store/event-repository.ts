import { conflict, notFound } from '../core/errors.js';
import type { NewRunEvent, RunEvent } from '../core/run-event.js';
import { insertEvents, reserveEventSeqs } from './event-writer.js';
import { toRunEvent } from './rows.js';
import type { StoreContext } from './store-context.js';

/** Append-only run events keyed `(run_id, seq)`. */
export class EventRepository {
  constructor(private readonly ctx: StoreContext) {}

  async append(runId: string, events: NewRunEvent[]): Promise<RunEvent[]> {
    if (events.length === 0) return [];
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const firstSeq = await reserveEventSeqs(tx, runId, events.length);
      if (firstSeq === null) throw notFound('run', runId);
      await insertEvents(tx, runId, firstSeq, events);
      return events.map((event, i) => ({ ...event, runId, seq: firstSeq + i }));
    });
  }

  /**
   * Append a worker's batch once: `(run, lease token, batch number)` is
   * recorded with the events in one transaction, so a retried batch (the
   * worker never saw the answer) is acknowledged without a second append.
   * Refused when the lease is not the run's current one, has expired, or the
   * run is no longer leased (stale writes from a fenced-off worker): checked
   * in the UPDATE that reserves the sequence numbers, never by a read before it.
   */
  async appendBatch(runId: string, leaseToken: string, batchNo: number, events: NewRunEvent[], at: number): Promise<{ firstSeq: number; count: number; duplicate: boolean }> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const seen = await tx
        .selectFrom('run_event_batches')
        .select(['first_seq', 'count'])
        .where('run_id', '=', runId)
        .where('lease_token', '=', leaseToken)
        .where('batch_no', '=', batchNo)
        .executeTakeFirst();
      if (seen) return { firstSeq: Number(seen.first_seq), count: Number(seen.count), duplicate: true };
      const firstSeq = await reserveEventSeqs(tx, runId, events.length, { leaseToken, at });
      if (firstSeq === null) {
        const run = await tx.selectFrom('runs').select('id').where('id', '=', runId).executeTakeFirst();
        if (!run) throw notFound('run', runId);
        throw conflict(`run ${runId}: lease token is stale or expired`, 'stale_lease');
      }
      await insertEvents(tx, runId, firstSeq, events);
      await tx.insertInto('run_event_batches').values({ run_id: runId, lease_token: leaseToken, batch_no: batchNo, first_seq: firstSeq, count: events.length }).execute();
      return { firstSeq, count: events.length, duplicate: false };
    });
  }

  async list(runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> {
    const rows = await this.ctx.db.selectFrom('run_events').selectAll().where('run_id', '=', runId).where('seq', '>', afterSeq).orderBy('seq', 'asc').limit(limit).execute();
    return rows.map(toRunEvent);
  }
}
