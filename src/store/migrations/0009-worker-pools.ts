import { sql, type Kysely } from 'kysely';

/**
 * Worker pools (docs/api.md "Worker pools"):
 * - `workers`: each worker process as it described itself in its last claim
 *   (name, labels as a JSON array, sandbox backend, capacity, version, the
 *   worker token it used), and when it was first and last seen (a claim poll
 *   or a heartbeat of one of its runs). Deployment-wide, like worker tokens;
 *   rows not seen for a day are removed by the sweeper.
 * - `runs.worker_host`: the name or label a run is routed to (null: any
 *   worker); the claim only hands a run to a worker that answers to it.
 * - `runs.worker_name`: the name of the worker that claimed the run.
 * - `runs_waiting_host`: the routed runs still waiting (QUEUED, PENDING),
 *   which the sweeper reads to say what each waits for. No claim or
 *   admission query can use it: none implies `worker_host IS NOT NULL`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('workers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull())
    .addColumn('backend', 'text', (c) => c.notNull())
    .addColumn('capacity', 'integer', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('token_name', 'text')
    .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('workers_last_seen').on('workers').column('last_seen_at').execute();

  await db.schema.alterTable('runs').addColumn('worker_host', 'text').execute();
  await db.schema.alterTable('runs').addColumn('worker_name', 'text').execute();
  await db.schema
    .createIndex('runs_waiting_host')
    .on('runs')
    .columns(['worker_host', 'id'])
    .where(sql<boolean>`worker_host IS NOT NULL AND state IN ('QUEUED', 'PENDING')`)
    .execute();
}
