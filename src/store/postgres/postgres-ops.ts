import { sql, type Kysely } from 'kysely';
import type { RunRow } from '../rows.js';
import type { Database } from '../schema.js';
import type { DialectOps } from '../store-context.js';
import type { ClaimInput } from '../store.js';

/**
 * The claim on PostgreSQL (the graphile-worker getJobs pattern): pick
 * PENDING rows (fair share between teams, below) with `FOR UPDATE SKIP LOCKED`, so concurrent claimers on
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
 *
 * Fair share between teams: each PENDING run's priority is the number of
 * runs its team holds (CLAIMED, INPROGRESS, BLOCKED) plus its turn in the
 * team's queue (1 = the team's oldest), lowest first, oldest first among
 * equals. So slots go round-robin across waiting teams, to the team holding
 * the fewest first: a team with a thousand admitted runs (or long runs that
 * hold many slots) does not get every slot that frees up while another
 * team's run waits. Admission already caps each team's active runs at its
 * `max_concurrent_runs`; this decides who gets the workers' slots between
 * teams under their caps.
 *
 * Bounded by teams, not by the backlog (a window over every PENDING row made
 * draining a 3,000-run backlog 7x slower, and O(n²) on stale statistics):
 * - `waiting`: the teams with PENDING runs, one seek each through
 *   `runs_pending_team` (a loose index scan);
 * - `candidates`: each team's oldest `limit` runs (no team can get more), and
 *   their priority; the held counts are taken only when two or more teams
 *   wait (alone, a team is simply served oldest first);
 * - `fair`: locks the best candidates, skipping rows other claimers hold; a
 *   window function cannot sit in a `FOR UPDATE` query, hence the CTEs. Its
 *   `r.state = 'PENDING'` is what `FOR UPDATE` re-checks on a row another
 *   claimer claimed and committed after our snapshot;
 * - `rest`: when concurrent claimers hold some candidates, the remaining
 *   slots are filled oldest first, as before (LIMIT 0, no scan, otherwise).
 * The extra planning costs ~0.3 ms per claim (docs/benchmarks.md).
 */
async function claim(db: Kysely<Database>, input: ClaimInput): Promise<RunRow[]> {
  const { rows } = await sql<RunRow>`
    WITH candidates AS MATERIALIZED (
      SELECT c.id, c.team_id, c.pending_at, c.turn
      FROM teams AS t
      CROSS JOIN LATERAL (
        SELECT id, team_id, pending_at, row_number() OVER (ORDER BY pending_at, id) AS turn
        FROM (SELECT id, team_id, pending_at FROM runs WHERE state = 'PENDING' AND team_id = t.id ORDER BY pending_at, id LIMIT ${input.limit}) AS oldest
      ) AS c
    ), held AS MATERIALIZED (
      SELECT team_id, count(*) AS n FROM runs
      WHERE state IN ('CLAIMED', 'INPROGRESS', 'BLOCKED')
        AND team_id IN (SELECT team_id FROM candidates)
        AND (SELECT count(DISTINCT team_id) FROM candidates) > 1
      GROUP BY team_id
    ), ranked AS MATERIALIZED (
      SELECT candidates.id, candidates.pending_at, 'PENDING'::text AS state, candidates.turn + coalesce(held.n, 0) AS priority
      FROM candidates LEFT JOIN held ON held.team_id = candidates.team_id
    ), fair AS (
      SELECT r.id FROM ranked
      JOIN runs AS r ON r.id = ranked.id AND r.state = ranked.state
      ORDER BY ranked.priority, ranked.pending_at, ranked.id
      LIMIT ${input.limit}
      FOR UPDATE OF r SKIP LOCKED
    ), rest AS (
      SELECT id FROM runs
      WHERE state = 'PENDING' AND id NOT IN (SELECT id FROM fair)
      ORDER BY pending_at, id
      LIMIT ${input.limit} - (SELECT count(*) FROM fair)
      FOR UPDATE SKIP LOCKED
    ), picked AS (
      SELECT id FROM fair UNION ALL SELECT id FROM rest
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
