import { notFound } from '../core/errors.js';
import type { NewRunEvent, RunEvent } from '../core/run-event.js';
import { insertEvents } from './event-writer.js';
import { toRunEvent } from './rows.js';
import type { StoreContext } from './store-context.js';

/** Append-only run events keyed `(run_id, seq)`. */
export class EventRepository {
  constructor(private readonly ctx: StoreContext) {}

  async append(runId: string, events: NewRunEvent[]): Promise<RunEvent[]> {
    if (events.length === 0) return [];
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const row = await tx
        .updateTable('runs')
        .set((eb) => ({ last_event_seq: eb('last_event_seq', '+', events.length) }))
        .where('id', '=', runId)
        .returning('last_event_seq')
        .executeTakeFirst();
      if (!row) throw notFound('run', runId);
      const firstSeq = Number(row.last_event_seq) - events.length + 1;
      await insertEvents(tx, runId, firstSeq, events);
      return events.map((event, i) => ({ ...event, runId, seq: firstSeq + i }));
    });
  }

  async list(runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> {
    const rows = await this.ctx.db
      .selectFrom('run_events')
      .selectAll()
      .where('run_id', '=', runId)
      .where('seq', '>', afterSeq)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map(toRunEvent);
  }
}
