import type { Kysely } from 'kysely';

/**
 * Worker event batches, for idempotent retries: a worker numbers its batches
 * per lease; a batch seen before is acknowledged without appending again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('run_event_batches')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('lease_token', 'text', (c) => c.notNull())
    .addColumn('batch_no', 'integer', (c) => c.notNull())
    .addColumn('first_seq', 'integer', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_event_batches_pk', ['run_id', 'lease_token', 'batch_no'])
    .execute();
}
