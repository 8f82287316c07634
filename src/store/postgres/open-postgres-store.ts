import { Kysely } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { OzError } from '../../core/errors.js';
import { migrateToLatest } from '../migrations/index.js';
import type { Database } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { isConnectionError } from './connection-errors.js';
import { PgNotifier } from './pg-notifier.js';
import { postgresOps } from './postgres-ops.js';
import { ResilientPostgresDialect } from './resilient-dialect.js';

const INT8_OID = 20;

export interface PostgresStoreOptions {
  url: string;
  /** A schema to live in (created if missing); tests use one per suite. */
  schema?: string;
  maxConnections?: number;
  /** Where lost connections and failed reconnects are reported. */
  logger?: Logger;
  /** A connection attempt fails after this long (a request then gets a 503 instead of hanging); default 5 s. */
  connectTimeoutMs?: number;
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
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    types: { getTypeParser: typeParser },
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
  });
  watchPool(pool, options.logger);
  // No JIT for our sessions: Oz's statements are short OLTP ones, and an
  // estimate can cross jit_above_cost without the work being there (the
  // claim, with an unanalyzed `teams` table estimated at 580 rows, compiled
  // for ~1.3 s per claim). Queued before the connection's first query.
  pool.on('connect', (client) => void client.query('SET jit = off').catch(() => {}));
  const db = new Kysely<Database>({ dialect: new ResilientPostgresDialect({ pool }) });
  let current: string;
  try {
    await migrateToLatest(db as Kysely<unknown>, 'postgres');
    current = (await pool.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema ?? 'public';
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const notifier = new PgNotifier(options.url, pool, `oz_wakeup_${current}`.slice(0, 63), options.logger, { connectTimeoutMs });
  return new SqlStore(db, postgresOps, () => notifier.close(), notifier);
}

/**
 * A database restart (or a network cut) must not end the process. node-postgres
 * emits 'error' on a client whose connection dies — on an idle one through the
 * pool, on a checked-out one on the client itself — and an 'error' event
 * nobody listens to is thrown. So both always have a listener: the dead client
 * is dropped (the pool does that on its own; a checked-out one is discarded on
 * release as no longer queryable), the query in flight fails with a
 * connection error (a 503, see connection-errors.ts), and the next query opens
 * a new connection once the database is back.
 */
function watchPool(pool: pg.Pool, logger: Logger | undefined): void {
  let lastReport = 0;
  const report = (error: Error): void => {
    // One line per burst: a restart ends every connection at once.
    const now = Date.now();
    if (now - lastReport < 1000) return;
    lastReport = now;
    if (isConnectionError(error)) logger?.warn({ err: error }, 'database connection lost; requests get 503 until it is back');
    else logger?.error({ err: error }, 'database connection error');
  };
  pool.on('error', report);
  pool.on('connect', (client) => client.on('error', report));
}
