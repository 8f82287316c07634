import { sql, type RawBuilder } from 'kysely';

/**
 * The claim's routing condition (docs/api.md "Worker pools"), the same SQL on
 * both databases: a run routed nowhere (`worker_host IS NULL`), or to one of
 * the names the claimer answers to (its name and labels). With no names (a
 * worker that sent none) only runs routed nowhere.
 */
export function routedTo(names: readonly (string | undefined)[], column = 'worker_host'): RawBuilder<boolean> {
  const ref = sql.ref(column);
  const given = [...new Set(names.filter((n): n is string => n !== undefined))];
  if (given.length === 0) return sql<boolean>`${ref} IS NULL`;
  return sql<boolean>`(${ref} IS NULL OR ${ref} IN (${sql.join(given)}))`;
}

/**
 * Who may claim a PENDING run: routed to it (above), and, while an ended
 * execution's sandbox is kept idle for a follow-up (`idle_worker_id` until
 * `idle_until`), only the worker that keeps it, so the follow-up resumes in
 * that sandbox. A lapsed hold, or one of a worker no longer seen, binds nobody.
 */
export function claimableBy(input: { workerId: string; workerName?: string | undefined; workerLabels?: readonly string[] | undefined; at: number }): RawBuilder<boolean> {
  const routed = routedTo([input.workerName, ...(input.workerLabels ?? [])]);
  // A worker that stopped checking on its idle sandboxes (dead) holds nothing.
  const gone = sql<boolean>`NOT EXISTS (SELECT 1 FROM workers AS iw WHERE iw.id = idle_worker_id AND iw.last_seen_at > ${input.at - IDLE_HOLDER_SEEN_MS})`;
  return sql<boolean>`(${routed} AND (idle_worker_id IS NULL OR idle_until <= ${input.at} OR idle_worker_id = ${input.workerId} OR ${gone}))`;
}

/** A worker keeping idle sandboxes checks on them every few seconds (src/worker/idle-sandboxes.ts); one not seen for this long is gone. */
export const IDLE_HOLDER_SEEN_MS = 30_000;
