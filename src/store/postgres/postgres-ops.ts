import { sql, type Kysely } from 'kysely';
import type { RunRow } from '../rows.js';
import type { Database } from '../schema.js';
import type { DialectOps } from '../store-context.js';
import type { ClaimInput } from '../store.js';
import { claimableBy } from '../routing-sql.js';

/** Candidates per team beyond the claim's limit, for rows concurrent claimers hold (skipped). */
const CLAIM_SLACK = 16;

/**
 * The claim on PostgreSQL (the graphile-worker getJobs pattern): pick
 * PENDING rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers on any
 * number of servers each take different rows without waiting on each other,
 * then update them and append their `state` events — all in ONE statement
 * (data-modifying CTEs), so a claim is one round trip and one implicit
 * transaction.
 *
 * No `AND r.state = 'PENDING'` in the UPDATE: `FOR UPDATE` already re-evaluates
 * the picking query's conditions on the latest committed row version and holds
 * the lock, so the row cannot change under us. Measured in bench/store: with
 * that redundant check the planner, on statistics that saw an empty queue,
 * joined against every PENDING row on each claim (O(n²) to drain a backlog).
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
 * Every step is an index probe per team, never a pass over the backlog, and
 * shaped so that statistics that saw an empty queue (PENDING estimated at one
 * row: every plan over it looks free) cannot pick a plan that scans it:
 * - `candidates`: per team, its oldest `limit` PENDING runs (no team can get
 *   more) plus `CLAIM_SLACK` for rows concurrent claimers hold, through
 *   `runs_pending_team` (LATERAL: one probe per team);
 * - `held`: per candidate team, its leased runs (`runs_team_state`), counted
 *   only when two or more teams wait (alone, a team is served oldest first);
 * - `ranked`: the best `limit` + slack of them, by priority. Its LIMIT also
 *   bounds the planner's estimate (an unanalyzed `teams` table is estimated
 *   at hundreds of rows, and with it a hash join over all of `runs` looked
 *   cheaper than primary-key lookups);
 * - `fair`: locks the best candidates, skipping rows other claimers hold. A
 *   window function cannot sit in a `FOR UPDATE` query, hence the CTEs. The
 *   join `r.state = ranked.state` (rather than `r.state = 'PENDING'`) keeps
 *   the planner from scanning `runs` by the partial index and probing the
 *   candidates per PENDING row; it is also what `FOR UPDATE` re-checks on a
 *   row another claimer claimed and committed after our snapshot;
 * - `rest`: when concurrent claimers hold even the slack, the remaining slots
 *   are filled in `runs_pending_team` order, so no claim comes back short
 *   while runs wait (LIMIT 0, no scan, otherwise).
 * A claim costs about 0.5 ms more than the plain oldest-first one did
 * (mostly planning; docs/benchmarks.md "Fair claims").
 *
 * Routing (docs/api.md "Worker pools"): `candidates` and `rest` take only
 * runs routed nowhere or to a name the claimer answers to (src/store/routing-sql.ts),
 * a filter on the rows `runs_pending_team` yields: a claimer walks past the
 * PENDING runs routed elsewhere that are older than the ones it may take.
 * Admission keeps that set small: a run routed to a name no worker seen
 * lately has stays QUEUED (run-repository.ts `admit`). The claim records the
 * worker's name and clears a routed run's status message (the sweeper's
 * "waiting for a worker …", which the claim answers).
 */
async function claim(db: Kysely<Database>, input: ClaimInput): Promise<RunRow[]> {
  const routing = claimableBy(input);
  const { rows } = await sql<RunRow>`
    WITH candidates AS MATERIALIZED (
      SELECT c.id, c.team_id, c.pending_at, c.turn
      FROM teams AS t
      CROSS JOIN LATERAL (
        SELECT id, team_id, pending_at, row_number() OVER (ORDER BY pending_at, id) AS turn
        FROM (SELECT id, team_id, pending_at FROM runs WHERE state = 'PENDING' AND team_id = t.id AND ${routing} ORDER BY pending_at, id LIMIT ${input.limit + CLAIM_SLACK}) AS oldest
      ) AS c
    ), held AS MATERIALIZED (
      SELECT w.team_id, h.n
      FROM (SELECT DISTINCT team_id FROM candidates) AS w
      CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM runs WHERE team_id = w.team_id AND state IN ('CLAIMED', 'INPROGRESS', 'BLOCKED')
      ) AS h
      WHERE (SELECT count(DISTINCT team_id) FROM candidates) > 1
    ), ranked AS MATERIALIZED (
      SELECT candidates.id, candidates.pending_at, 'PENDING'::text AS state, candidates.turn + coalesce(held.n, 0) AS priority
      FROM candidates LEFT JOIN held ON held.team_id = candidates.team_id
      ORDER BY priority, pending_at, id
      LIMIT ${input.limit + CLAIM_SLACK}
    ), fair AS (
      SELECT r.id FROM ranked
      JOIN runs AS r ON r.id = ranked.id AND r.state = ranked.state
      ORDER BY ranked.priority, ranked.pending_at, ranked.id
      LIMIT ${input.limit}
      FOR UPDATE OF r SKIP LOCKED
    ), rest AS (
      SELECT id FROM runs
      WHERE state = 'PENDING' AND id NOT IN (SELECT id FROM fair) AND ${routing}
      ORDER BY team_id, pending_at, id
      LIMIT ${input.limit} - (SELECT count(*) FROM fair)
      FOR UPDATE SKIP LOCKED
    ), picked AS (
      SELECT id FROM fair UNION ALL SELECT id FROM rest
    ), claimed AS (
      UPDATE runs AS r SET
        state = 'CLAIMED',
        attempt = r.attempt + 1,
        worker_id = ${input.workerId},
        worker_name = ${input.workerName ?? null}::text,
        lease_token = replace(gen_random_uuid()::text, '-', ''),
        lease_expires_at = ${input.at + input.leaseTtlMs}::bigint,
        claimed_at = ${input.at}::bigint,
        updated_at = ${input.at}::bigint,
        last_event_seq = r.last_event_seq + 1,
        status_message = CASE WHEN r.worker_host IS NULL THEN r.status_message ELSE NULL END
      FROM picked
      WHERE r.id = picked.id
      RETURNING r.*
    ), events AS (
      INSERT INTO run_events (run_id, seq, type, at, data)
      SELECT id, last_event_seq, 'state', ${input.at}::bigint, '{"from":"PENDING","to":"CLAIMED"}'
      FROM claimed
    ), executions AS (
      UPDATE run_executions AS e SET state = 'CLAIMED', worker_id = claimed.worker_id, worker_name = claimed.worker_name, claimed_at = ${input.at}::bigint
      FROM claimed
      WHERE e.run_id = claimed.id AND e.number = claimed.execution
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
