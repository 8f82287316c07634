import type { Kysely } from 'kysely';

/**
 * `runs.network_audit`: what the run's network did over all its executions
 * (src/core/network-audit.ts, JSON, bounded by the worker and the server),
 * as each execution's finish reported it; null before any did.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('network_audit', 'text').execute();
}
