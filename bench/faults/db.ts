/**
 * Direct reads of the deployment's database (not through the API): a fresh
 * connection per query, so a PostgreSQL restart never leaves the harness
 * holding a dead one.
 */
import pg from 'pg';

export async function query<T extends object>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000, statement_timeout: 30_000 });
  client.on('error', () => {
    // A restart of the database mid-query: the query itself rejects.
  });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Ids of the runs in a leased state, held by one of `workerIds` (all leased runs without it). */
export async function leasedRuns(url: string, workerIds?: readonly string[]): Promise<string[]> {
  const rows = workerIds
    ? await query<{ id: string }>(url, `SELECT id FROM runs WHERE state IN ('CLAIMED', 'INPROGRESS', 'BLOCKED') AND worker_id = ANY($1)`, [workerIds])
    : await query<{ id: string }>(url, `SELECT id FROM runs WHERE state IN ('CLAIMED', 'INPROGRESS', 'BLOCKED')`);
  return rows.map((r) => r.id);
}

/** How many of `runIds` are not terminal yet. */
export async function openRuns(url: string, runIds: readonly string[]): Promise<number> {
  const rows = await query<{ n: string }>(url, `SELECT count(*) AS n FROM runs WHERE id = ANY($1) AND state NOT IN ('SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED')`, [runIds]);
  return Number(rows[0]?.n ?? 0);
}

/** Leased runs per worker id: how many, and how many of them still CLAIMED (their harness not started). */
export async function leasesByWorker(url: string): Promise<Map<string, { leased: number; claimed: number }>> {
  const rows = await query<{ worker_id: string | null; n: string; claimed: string }>(
    url,
    `SELECT worker_id, count(*) AS n, count(*) FILTER (WHERE state = 'CLAIMED') AS claimed FROM runs WHERE state IN ('CLAIMED', 'INPROGRESS', 'BLOCKED') GROUP BY worker_id`,
  );
  return new Map(rows.filter((r) => r.worker_id !== null).map((r) => [r.worker_id as string, { leased: Number(r.n), claimed: Number(r.claimed) }]));
}

/** Runs of `runIds` that are not terminal, with their state. */
export async function liveRuns(url: string, runIds: readonly string[]): Promise<{ id: string; state: string }[]> {
  return query<{ id: string; state: string }>(url, `SELECT id, state FROM runs WHERE id = ANY($1) AND state NOT IN ('SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED') ORDER BY id`, [
    runIds,
  ]);
}
