import { sql, type Kysely } from 'kysely';
import type { RunRow } from '../rows.js';
import type { Database } from '../schema.js';
import type { DialectOps } from '../store-context.js';
import type { ClaimInput } from '../store.js';
import { insertEvents } from '../event-writer.js';
import { claimableBy } from '../routing-sql.js';
import { recordClaimsIn } from '../execution-records.js';

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
 * The claim: one UPDATE … RETURNING over PENDING rows, inside BEGIN IMMEDIATE.
 * No SKIP LOCKED exists or is needed: holding the write lock, no other claimer
 * can see the same PENDING rows. Each row gets its own lease token from
 * SQLite's CSPRNG (randomblob is evaluated per row). Measured in bench/store
 * (docs/benchmarks.md).
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
 * Bounded by teams, not by the backlog: `waiting` finds the teams with
 * PENDING runs by hopping through `runs_pending_team` (one index seek per
 * team), `candidates` takes only each team's oldest `limit` runs (no team
 * can get more), and the held counts (`runs_team_state`) are taken only when
 * two or more teams wait (alone, a team is simply served oldest first). The
 * PostgreSQL claim (postgres-ops.ts) is the same ranking; SQLite needs no
 * locking steps, holding the write lock.
 *
 * Routing, as there: `candidates` takes only runs routed nowhere or to a
 * name the claimer answers to (src/store/routing-sql.ts); the claim records
 * the worker's name and clears a routed run's waiting message.
 */
async function claim(db: Kysely<Database>, input: ClaimInput): Promise<RunRow[]> {
  const routing = claimableBy(input);
  return writeTx(db, async (tx) => {
    const { rows } = await sql<RunRow>`
      WITH RECURSIVE waiting(team_id) AS (
        SELECT (SELECT team_id FROM runs WHERE state = 'PENDING' ORDER BY team_id LIMIT 1)
        UNION ALL
        SELECT (SELECT r.team_id FROM runs AS r WHERE r.state = 'PENDING' AND r.team_id > waiting.team_id ORDER BY r.team_id LIMIT 1)
        FROM waiting WHERE waiting.team_id IS NOT NULL
      ), held AS (
        SELECT team_id, CASE WHEN (SELECT COUNT(*) FROM waiting WHERE team_id IS NOT NULL) > 1
          THEN (SELECT COUNT(*) FROM runs AS h WHERE h.team_id = waiting.team_id AND h.state IN ('CLAIMED', 'INPROGRESS', 'BLOCKED'))
          ELSE 0 END AS n
        FROM waiting WHERE team_id IS NOT NULL
      ), candidates AS (
        SELECT r.id, r.pending_at, held.n + ROW_NUMBER() OVER (PARTITION BY r.team_id ORDER BY r.pending_at, r.id) AS priority
        FROM held JOIN runs AS r ON r.id IN (
          SELECT id FROM runs WHERE state = 'PENDING' AND team_id = held.team_id AND ${routing} ORDER BY pending_at, id LIMIT ${input.limit}
        )
      )
      UPDATE runs SET
        state = 'CLAIMED',
        attempt = attempt + 1,
        worker_id = ${input.workerId},
        worker_name = ${input.workerName ?? null},
        lease_token = lower(hex(randomblob(16))),
        lease_expires_at = ${input.at + input.leaseTtlMs},
        claimed_at = ${input.at},
        updated_at = ${input.at},
        last_event_seq = last_event_seq + 1,
        status_message = CASE WHEN worker_host IS NULL THEN status_message ELSE NULL END
      WHERE id IN (SELECT id FROM candidates ORDER BY priority, pending_at, id LIMIT ${input.limit})
      RETURNING *`.execute(tx);
    for (const row of rows) {
      await insertEvents(tx, row.id, Number(row.last_event_seq), [{ type: 'state', at: input.at, data: { from: 'PENDING', to: 'CLAIMED' } }]);
    }
    await recordClaimsIn(tx, rows, input.at);
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
