import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import type { ListRunsQuery, RunSortField, SortOrder } from '../core/run.js';
import type { CursorPosition } from './run-cursor.js';
import type { Database } from './schema.js';

/**
 * `GET /agent/runs` as one keyset query:
 *
 *   SELECT * FROM runs WHERE team_id = :team AND <filters>
 *     AND (<sort expr>, id) < (:last_value, :last_id)      -- '>' for asc
 *   ORDER BY <sort expr> DESC, id DESC LIMIT :limit + 1
 *
 * The row-value comparison is the same on SQLite (≥ 3.15) and PostgreSQL, and
 * the (team_id, updated_at|created_at, id) indexes serve it directly, so a page
 * costs the same at row 10 and at row 100,000. Rows inserted while a client
 * pages land before or after the cursor, never in the middle: nothing already
 * listed is repeated and nothing that existed is skipped. The extra row tells
 * whether a next page exists.
 */
export function sortExpression(sortBy: RunSortField, sortOrder: SortOrder): Expression<string | number> {
  switch (sortBy) {
    case 'updated_at':
      return sql.ref<number>('updated_at');
    case 'created_at':
      return sql.ref<number>('created_at');
    case 'title':
      return sql.ref<string>('title');
    case 'agent':
      // Runs without a skill group last in either direction (the spec).
      return sortOrder === 'asc'
        ? sql<string>`(CASE WHEN skill_spec IS NULL THEN '1' ELSE '0' || skill_spec END)`
        : sql<string>`(CASE WHEN skill_spec IS NULL THEN '' ELSE '1' || skill_spec END)`;
  }
}

function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function buildListRunsQuery(db: Kysely<Database>, query: ListRunsQuery, after: CursorPosition | null) {
  const f = query.filters;
  const sortExpr = sortExpression(query.sortBy, query.sortOrder);
  const direction = query.sortOrder === 'asc' ? sql`ASC` : sql`DESC`;

  let q = db.selectFrom('runs').selectAll().where('team_id', '=', query.teamId);
  if (f.states && f.states.length > 0) q = q.where('state', 'in', f.states);
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.modelId !== undefined) q = q.where('model_id', '=', f.modelId);
  if (f.creatorId !== undefined) q = q.where('creator_id', '=', f.creatorId);
  if (f.source !== undefined) q = q.where('source', '=', f.source);
  if (f.executionLocation !== undefined) q = q.where('execution_location', '=', f.executionLocation);
  if (f.createdAfter !== undefined) q = q.where('created_at', '>', f.createdAfter);
  if (f.createdBefore !== undefined) q = q.where('created_at', '<', f.createdBefore);
  if (f.updatedAfter !== undefined) q = q.where('updated_at', '>', f.updatedAfter);
  if (f.environmentId !== undefined) q = q.where('environment_id', '=', f.environmentId);
  if (f.skillSpec !== undefined) q = q.where('skill_spec', '=', f.skillSpec);
  if (f.scheduleId !== undefined) q = q.where('schedule_id', '=', f.scheduleId);
  if (f.artifactType !== undefined) {
    const type = f.artifactType;
    q = q.where((eb) =>
      eb.exists(eb.selectFrom('run_artifacts').select(sql.lit(1).as('one')).whereRef('run_artifacts.run_id', '=', 'runs.id').where('run_artifacts.type', '=', type)),
    );
  }
  if (f.ancestorRunId !== undefined) {
    // Every descendant of the ancestor, however deep (both databases have recursive CTEs).
    q = q.where(
      sql<SqlBool>`id IN (WITH RECURSIVE descendants(id) AS (
          SELECT id FROM runs WHERE parent_run_id = ${f.ancestorRunId}
          UNION SELECT r.id FROM runs r JOIN descendants d ON r.parent_run_id = d.id)
        SELECT id FROM descendants)`,
    );
  }
  if (f.query !== undefined && f.query.length > 0) {
    const pattern = likePattern(f.query);
    q = q.where(
      sql<SqlBool>`(lower(title) LIKE ${pattern} ESCAPE '\\' OR lower(prompt) LIKE ${pattern} ESCAPE '\\' OR lower(coalesce(skill_spec, '')) LIKE ${pattern} ESCAPE '\\')`,
    );
  }
  if (after) {
    const op = query.sortOrder === 'asc' ? sql`>` : sql`<`;
    q = q.where(sql<SqlBool>`(${sortExpr}, id) ${op} (${after.value}, ${after.id})`);
  }
  return q
    .orderBy(sql`${sortExpr} ${direction}`)
    .orderBy(sql`id ${direction}`)
    .limit(query.limit + 1);
}
