import type { Kysely } from 'kysely';

/**
 * `run_diffs`: per run and repository, the patch of the run's changes (from
 * the commit its first execution started on to the last one's commit), as
 * its worker published it, bounded (`truncated` when it was cut). Replaced by
 * each execution that publishes; it goes with its run.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('run_diffs')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('repository', 'text', (c) => c.notNull())
    .addColumn('execution', 'integer', (c) => c.notNull())
    .addColumn('base', 'text', (c) => c.notNull())
    .addColumn('head', 'text', (c) => c.notNull())
    .addColumn('patch', 'text', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('truncated', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_diffs_pk', ['run_id', 'repository'])
    .execute();
}
