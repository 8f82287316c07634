import type { Kysely } from 'kysely';
import type { RunRow } from './rows.js';
import type { Database, DialectName } from './schema.js';
import type { ClaimInput } from './store.js';

/** What differs between the two databases, and nothing else. */
export interface DialectOps {
  readonly name: DialectName;
  readonly supportsSkipLocked: boolean;
  /**
   * Run `fn` in a write transaction. SQLite: `BEGIN IMMEDIATE` on the held
   * connection, so the write lock is taken up front and a read-then-write
   * never upgrades (and never deadlocks) against another writer.
   * PostgreSQL: a READ COMMITTED transaction.
   */
  writeTx<T>(db: Kysely<Database>, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Serialize admission for one team inside `tx` (PostgreSQL: advisory lock). */
  lockTeamForAdmission(tx: Kysely<Database>, teamId: string): Promise<void>;
  /** PENDING → CLAIMED for up to `limit` runs, state events included. */
  claim(db: Kysely<Database>, input: ClaimInput): Promise<RunRow[]>;
}

export interface StoreContext {
  readonly db: Kysely<Database>;
  readonly ops: DialectOps;
}
