import type { Kysely } from 'kysely';

/**
 * Schedules, and one row per fired slot: the primary key (schedule_id, slot)
 * is what makes a slot fire once however many schedulers race for it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('schedules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
    .addColumn('owner_user_id', 'text')
    .addColumn('creator_id', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('cron', 'text', (c) => c.notNull())
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('overlap_policy', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('prompt', 'text', (c) => c.notNull())
    .addColumn('agent_config', 'text', (c) => c.notNull())
    .addColumn('next_fire_at', 'bigint')
    .addColumn('queued_slot', 'bigint')
    .addColumn('last_fired_at', 'bigint')
    .addColumn('last_run_id', 'text')
    .addColumn('last_spawn_error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('schedules_due').on('schedules').columns(['enabled', 'next_fire_at']).execute();
  await db.schema.createIndex('schedules_team').on('schedules').columns(['team_id', 'name']).execute();
  await db.schema
    .createTable('schedule_fires')
    .addColumn('schedule_id', 'text', (c) => c.notNull())
    .addColumn('slot', 'bigint', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('schedule_fires_pk', ['schedule_id', 'slot'])
    .execute();
  await db.schema.createIndex('schedule_fires_outcome').on('schedule_fires').columns(['outcome', 'created_at']).execute();
}
