import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../schema.js';

/** Teams, users, API keys, environments, runs, run events, artifacts, idempotency keys. */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  await db.schema
    .createTable('teams')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('max_concurrent_runs', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('last_used_at', 'bigint')
    .execute();
  await db.schema.createIndex('api_keys_team').on('api_keys').columns(['team_id', 'created_at']).execute();

  await db.schema
    .createTable('environments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
    .addColumn('owner_user_id', 'text')
    .addColumn('creator_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('setup_failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('environments_team').on('environments').columns(['team_id', 'updated_at']).execute();

  let runs = db.schema
    .createTable('runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
    .addColumn('creator_id', 'text')
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('prompt', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('execution_location', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('environment_id', 'text')
    .addColumn('schedule_id', 'text')
    .addColumn('schedule_name', 'text')
    .addColumn('schedule_cron', 'text')
    .addColumn('parent_run_id', 'text')
    .addColumn('skill_spec', 'text')
    .addColumn('name', 'text')
    .addColumn('model_id', 'text')
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('worker_id', 'text')
    .addColumn('lease_token', 'text')
    .addColumn('lease_expires_at', 'bigint')
    .addColumn('cancel_requested_at', 'bigint')
    .addColumn('status_message', 'text')
    .addColumn('usage', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint');
  for (const state of ['queued', 'pending', 'claimed', 'inprogress', 'blocked', 'succeeded', 'failed', 'error', 'cancelled']) {
    runs = runs.addColumn(`${state}_at`, 'bigint');
  }
  await runs.addColumn('last_event_seq', 'integer', (c) => c.notNull().defaultTo(0)).execute();

  // Keyset pagination: (team, sort value, id) for the two timestamp sorts.
  await db.schema.createIndex('runs_team_updated').on('runs').columns(['team_id', 'updated_at', 'id']).execute();
  await db.schema.createIndex('runs_team_created').on('runs').columns(['team_id', 'created_at', 'id']).execute();
  // Partial indexes on the waiting states keep claim and admission scans to
  // the handful of waiting rows, however many finished runs are stored.
  await db.schema.createIndex('runs_pending_claim').on('runs').columns(['pending_at', 'id']).where(sql.ref('state'), '=', 'PENDING').execute();
  await db.schema.createIndex('runs_queued_admit').on('runs').columns(['team_id', 'queued_at', 'id']).where(sql.ref('state'), '=', 'QUEUED').execute();
  await db.schema.createIndex('runs_lease_sweep').on('runs').column('lease_expires_at').where(sql.ref('lease_expires_at'), 'is not', null).execute();
  // Admission counts a team's active runs.
  await db.schema.createIndex('runs_team_state').on('runs').columns(['team_id', 'state']).execute();
  await db.schema.createIndex('runs_schedule').on('runs').column('schedule_id').execute();
  await db.schema.createIndex('runs_environment').on('runs').column('environment_id').execute();
  await db.schema.createIndex('runs_parent').on('runs').column('parent_run_id').execute();

  await db.schema
    .createTable('run_events')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_events_pk', ['run_id', 'seq'])
    .execute();

  await db.schema
    .createTable('run_artifacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('run_artifacts_run').on('run_artifacts').columns(['run_id', 'type']).execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['team_id', 'key'])
    .execute();

  if (dialect === 'postgres') {
    // The runs table churns (every transition is an UPDATE); keep the
    // planner's statistics and the visibility map fresh so the partial
    // indexes on waiting states stay cheap to scan.
    await sql`ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02, fillfactor = 85)`.execute(db);
  }
}
