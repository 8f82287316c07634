import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { OzError } from '../../core/errors.js';
import type { DialectName } from '../schema.js';
import * as m0001 from './0001-init.js';
import * as m0002 from './0002-worker-tokens.js';
import * as m0003 from './0003-event-batches.js';
import * as m0004 from './0004-secrets.js';
import * as m0005 from './0005-schedules.js';
import * as m0006 from './0006-tenancy-limits.js';
import * as m0007 from './0007-secret-base-url.js';
import * as m0008 from './0008-environment-snapshots.js';
import * as m0009 from './0009-worker-pools.js';
import * as m0010 from './0010-followups.js';
import * as m0011 from './0011-run-diffs.js';
import * as m0012 from './0012-web-sessions.js';
import * as m0013 from './0013-network-audit.js';

/**
 * Versioned migrations, applied on open. Kysely's Migrator records applied
 * names in `kysely_migration` and takes a lock (an advisory lock on
 * PostgreSQL), so several servers starting at once apply each migration once.
 */
function provider(dialect: DialectName): MigrationProvider {
  const all: Record<string, Migration> = {
    '0001-init': { up: (db) => m0001.up(db, dialect) },
    '0002-worker-tokens': { up: (db) => m0002.up(db) },
    '0003-event-batches': { up: (db) => m0003.up(db) },
    '0004-secrets': { up: (db) => m0004.up(db) },
    '0005-schedules': { up: (db) => m0005.up(db) },
    '0006-tenancy-limits': { up: (db) => m0006.up(db) },
    '0007-secret-base-url': { up: (db) => m0007.up(db) },
    '0008-environment-snapshots': { up: (db) => m0008.up(db) },
    '0009-worker-pools': { up: (db) => m0009.up(db) },
    '0010-followups': { up: (db) => m0010.up(db, dialect) },
    '0011-run-diffs': { up: (db) => m0011.up(db) },
    '0012-web-sessions': { up: (db) => m0012.up(db) },
    '0013-network-audit': { up: (db) => m0013.up(db) },
  };
  return { getMigrations: async () => all };
}

export async function migrateToLatest(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  // PostgreSQL: name the schema of the migration tables explicitly. Unqualified,
  // Kysely looks for an existing `kysely_migration_lock` in *every* schema,
  // finds another deployment's (or test's), skips creating its own, and then
  // fails to find it through our search_path.
  const migrationTableSchema = dialect === 'postgres' ? (await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db)).rows[0]?.schema : undefined;
  const migrator = new Migrator({ db, provider: provider(dialect), ...(migrationTableSchema ? { migrationTableSchema } : {}) });
  let { error, results } = await migrator.migrateToLatest();
  // Kysely finds its tables by introspecting every table of the database; a
  // schema someone else drops meanwhile (another deployment, a test) fails
  // that query. Nothing of ours was touched: try again.
  for (let attempt = 1; error && attempt < 5 && droppedElsewhere(error, migrationTableSchema); attempt++) {
    await new Promise((r) => setTimeout(r, 50 * attempt));
    ({ error, results } = await migrator.migrateToLatest());
  }
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new OzError('internal_error', `database migration ${failed} failed: ${String(error)}`, {
      reason: 'migration_failed',
      retryable: false,
      cause: error,
    });
  }
}

/** "schema X does not exist", or "relation X.table does not exist" (a table of it, dropped mid-query), naming a schema that is not ours. */
function droppedElsewhere(error: unknown, ours: string | undefined): boolean {
  const text = String(error);
  const named = /schema "([^"]+)" does not exist/.exec(text)?.[1] ?? /relation "([^".]+)\.[^"]+" does not exist/.exec(text)?.[1];
  return named !== undefined && named !== ours;
}
