import { sql, type Kysely } from 'kysely';
import type { RunRow } from '../rows.js';
import type { Database } from '../schema.js';
import type { DialectOps } from '../store-context.js';
import type { ClaimInput } from '../store.js';
import { insertEvents } from '../event-writer.js';

/**
 * SQLite: one writer at a time for the whole file. Kysely's SQLite driver holds
 * a single connection behind a mutex, so in one process transactions never
 * interleave; `BEGIN IMMEDIATE` additionally takes the file's write lock at the
 * start, so another process (a benchmark, a second claimer in the race test)
 * waits on busy_timeout instead of failing a lock upgrade half-way.
 */
async function writeTx<T>(db: Kysely<Database>, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (error) {
      await sql`ROLLBACK`.execute(conn);
      throw error;
    }
  });
}

/**
 * The claim: one UPDATE … RETURNING over the oldest PENDING rows (served by the
 * partial index `runs_pending_claim`), inside BEGIN IMMEDIATE. No SKIP LOCKED
 * exists or is needed: holding the write lock, no other claimer can see the
 * same PENDING rows. Each row gets its own lease token from SQLite's CSPRNG
 * (randomblob is evaluated per row). Measured in bench/store (docs/benchmarks.md).
 */
async function claim(db: Kysely<Database>, input: ClaimInput): Promise<RunRow[]> {
  return writeTx(db, async (tx) => {
    const { rows } = await sql<RunRow>`
      UPDATE runs SET
        state = 'CLAIMED',
        attempt = attempt + 1,
        worker_id = ${input.workerId},
        lease_token = lower(hex(randomblob(16))),
        lease_expires_at = ${input.at + input.leaseTtlMs},
        claimed_at = ${input.at},
        updated_at = ${input.at},
        last_event_seq = last_event_seq + 1
      WHERE id IN (
        SELECT id FROM runs WHERE state = 'PENDING' ORDER BY pending_at, id LIMIT ${input.limit}
      )
      RETURNING *`.execute(tx);
    for (const row of rows) {
      await insertEvents(tx, row.id, Number(row.last_event_seq), [
        { type: 'state', at: input.at, data: { from: 'PENDING', to: 'CLAIMED' } },
      ]);
    }
    return rows;
  });
}

export const sqliteOps: DialectOps = {
  name: 'sqlite',
  supportsSkipLocked: false,
  writeTx,
  // The write lock of BEGIN IMMEDIATE already serializes admission.
  lockTeamForAdmission: async () => {},
  claim,
};
