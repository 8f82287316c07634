import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { OzError } from '../../core/errors.js';
import { migrateToLatest } from '../migrations/index.js';
import type { Database } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { PgNotifier } from './pg-notifier.js';
import { postgresOps } from './postgres-ops.js';

const INT8_OID = 20;

export interface PostgresStoreOptions {
  url: string;
  /** A schema to live in (created if missing); tests use one per suite. */
  schema?: string;
  maxConnections?: number;
}

/** int8 → JS number: our int8 columns are epoch milliseconds and counts. */
function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID) return (value: string) => Number(value);
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<SqlStore> {
  const schema = options.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new OzError('invalid_request', `schema: ${JSON.stringify(schema)} is not a plain lower-case identifier`);
  }
  if (schema !== undefined) {
    const client = new pg.Client({ connectionString: options.url });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      await client.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    types: { getTypeParser: typeParser } as pg.CustomTypesConfig,
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let current: string;
  try {
    await migrateToLatest(db as Kysely<unknown>, 'postgres');
    current = (await pool.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema ?? 'public';
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const notifier = new PgNotifier(options.url, pool, `oz_wakeup_${current}`.slice(0, 63));
  return new SqlStore(db, postgresOps, () => notifier.close(), notifier);
}
