import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../schema.js';

/**
 * Follow-ups and executions (docs/design.md "Follow-ups and executions"):
 * - `runs.execution`: the number of the run's latest execution (1 on creation);
 *   a follow-up to an ended run starts the next one.
 * - `runs.followups_through`: the last follow-up the run's agent has been given.
 * - `runs.idle_worker_id` / `idle_until`: after an execution ends, the worker
 *   that keeps its sandbox alive, and until when; only that worker may claim
 *   the run's next execution meanwhile, and the idle sandbox holds one of the
 *   team's concurrency slots.
 * - `run_executions`: one row per execution, with its own timestamps, worker
 *   and outcome; existing runs get their first execution from the run row.
 * - `run_followups`: the messages sent to a run, numbered 1.. per run.
 * - `run_workspace_snapshots`: the workspace an execution left (a tar of its
 *   changes on top of the repositories' commits, and those commits as a JSON
 *   array), the latest one per run.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  await db.schema
    .alterTable('runs')
    .addColumn('execution', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable('runs')
    .addColumn('followups_through', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('runs').addColumn('idle_worker_id', 'text').execute();
  await db.schema.alterTable('runs').addColumn('idle_until', 'bigint').execute();
  await db.schema
    .createIndex('runs_idle')
    .on('runs')
    .columns(['team_id', 'idle_until'])
    .where(sql<boolean>`idle_until IS NOT NULL`)
    .execute();

  await db.schema
    .createTable('run_executions')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('worker_id', 'text')
    .addColumn('worker_name', 'text')
    .addColumn('claimed_at', 'bigint')
    .addColumn('started_at', 'bigint')
    .addColumn('ended_at', 'bigint')
    .addColumn('status_message', 'text')
    .addColumn('usage', 'text')
    .addPrimaryKeyConstraint('run_executions_pk', ['run_id', 'number'])
    .execute();
  await sql`
    INSERT INTO run_executions (run_id, number, state, created_at, worker_id, worker_name, claimed_at, started_at, ended_at, status_message, usage)
    SELECT id, 1, state, created_at, worker_id, worker_name, claimed_at, started_at,
      CASE WHEN state IN ('SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED') THEN updated_at ELSE NULL END, status_message, usage
    FROM runs`.execute(db);

  await db.schema
    .createTable('run_followups')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('creator_id', 'text')
    .addColumn('execution', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_followups_pk', ['run_id', 'seq'])
    .execute();

  await db.schema
    .createTable('run_workspace_snapshots')
    .addColumn('run_id', 'text', (c) => c.primaryKey().references('runs.id').onDelete('cascade'))
    .addColumn('execution', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('heads', 'text', (c) => c.notNull())
    .addColumn('data', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
