import type { Kysely } from 'kysely';

/**
 * `environment_snapshots`: each environment's latest warm-start snapshot, as
 * a worker reported it in a run's `notice` event (docs/environments.md
 * "Snapshots"). One row per environment, replaced by every report; it goes
 * with its environment (`ON DELETE CASCADE`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('environment_snapshots')
    .addColumn('environment_id', 'text', (c) => c.primaryKey().references('environments.id').onDelete('cascade'))
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('hits', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .execute();
}
