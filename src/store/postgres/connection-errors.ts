import { OzError } from '../../core/errors.js';

/**
 * The one place that decides "the database is unreachable" (a restart, a
 * failover, a network cut) as opposed to "this statement failed": such errors
 * become a 503 `resource_unavailable` (retryable, reason
 * `database_unavailable`) wherever they surface, so clients and workers retry
 * instead of seeing a 500, and the server process itself carries on.
 * Only for errors from the database driver (an ENOENT or ECONNREFUSED from
 * anywhere else is not the database's): the store's Kysely driver applies it
 * (`resilient-dialect.ts`), nothing downstream guesses.
 */
export const DATABASE_UNAVAILABLE = 'database_unavailable';

/** Socket-level failures (node's `code`). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOENT', // a unix socket that is not there (the server is down)
]);

/**
 * SQLSTATEs: class 08 (connection exception); 57P01 admin_shutdown (fast /
 * smart shutdown, `pg_terminate_backend`), 57P02 crash_shutdown, 57P03
 * cannot_connect_now (starting up, shutting down, recovery); 53300
 * too_many_connections.
 */
function isUnavailableSqlState(code: string): boolean {
  return /^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

/** What node-postgres and pg-pool say when a connection died or could not be made in time. */
const MESSAGES = [/^Connection terminated/, /^timeout exceeded when trying to connect$/, /is not queryable$/, /^Postgres connection has been discarded$/];

export function isConnectionError(error: unknown): boolean {
  if (error instanceof OzError) return false;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || isUnavailableSqlState(code))) return true;
  // node's happy-eyeballs connect fails with an AggregateError of every address's error.
  if (error instanceof AggregateError && error.errors.some((e) => isConnectionError(e))) return true;
  return MESSAGES.some((m) => m.test(error.message));
}

/** The 503 for a connection error, or null for anything else. */
export function databaseUnavailable(error: unknown): OzError | null {
  if (error instanceof OzError) return error.reason === DATABASE_UNAVAILABLE ? error : null;
  if (!isConnectionError(error)) return null;
  return new OzError('resource_unavailable', 'the database is unreachable right now; retry shortly', {
    reason: DATABASE_UNAVAILABLE,
    cause: error,
  });
}

/** Rethrow a connection error as the 503; anything else unchanged. */
export function mapConnectionError(error: unknown): never {
  throw databaseUnavailable(error) ?? error;
}
