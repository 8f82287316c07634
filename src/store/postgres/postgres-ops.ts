import { sql, type Kysely } from 'kysely';
import type { RunRow } from '../rows.js';
import type { Database } from '../schema.js';
import type { DialectOps } from '../store-context.js';
import type { ClaimInput } from '../store.js';

/**
 * The claim on PostgreSQL (the graphile-worker getJobs pattern): pick the
 * oldest PENDING rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers on
 * any number of servers each take different rows without waiting on each
 * other, then update them and append their `state` events — all in ONE
 * statement (data-modifying CTEs), so a claim is one round trip and one
 * implicit transaction. The picked rows come from the partial index
 * `runs_pending_claim`, so the scan stays small however many finished runs
 * the table holds.
 *
 * No `AND r.state = 'PENDING'` in the UPDATE: `FOR UPDATE` already re-evaluates
 * `state` on the latest committed row version and holds the lock, so the row
 * cannot change under us. Measured in bench/store: with that redundant check
 * the planner, on statistics that saw an empty queue, joined against every
 * PENDING row via the partial index on each claim (8 ms at limit 1, 145 ms at
 * limit 50, halfway through a 5,000-run backlog: O(n²) to drain); without it,
 * `r` is found by primary key (0.3 ms / 3.6 ms).
 */
async function claim(db: Kysely<Database>, input: ClaimInput): Promise<RunRow[]> {
  const { rows } = await sql<RunRow>`
    WITH picked AS (
      SELECT id FROM runs
      WHERE state = 'PENDING'
      ORDER BY pending_at, id
      LIMIT ${input.limit}
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE runs AS r SET
        state = 'CLAIMED',
        attempt = r.attempt + 1,
        worker_id = ${input.workerId},
        lease_token = replace(gen_random_uuid()::text, '-', ''),
        lease_expires_at = ${input.at + input.leaseTtlMs}::bigint,
        claimed_at = ${input.at}::bigint,
        updated_at = ${input.at}::bigint,
        last_event_seq = r.last_event_seq + 1
      FROM picked
      WHERE r.id = picked.id
      RETURNING r.*
    ), events AS (
      INSERT INTO run_events (run_id, seq, type, at, data)
      SELECT id, last_event_seq, 'state', ${input.at}::bigint, '{"from":"PENDING","to":"CLAIMED"}'
      FROM claimed
    )
    SELECT * FROM claimed`.execute(db);
  return rows;
}

export const postgresOps: DialectOps = {
  name: 'postgres',
  supportsSkipLocked: true,
  writeTx: (db, fn) => db.transaction().execute(fn),
  // Two servers must never both admit the team's last free slot: hold a
  // transaction-scoped advisory lock on the team while counting and admitting.
  lockTeamForAdmission: async (tx, teamId) => {
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${teamId}, 0))`.execute(tx);
  },
  claim,
};
