import { sql, type Kysely } from 'kysely';

/**
 * Tenancy and limits (issue 16 items 5 and 8):
 * - `teams.limit_ceilings`: the team's own per-run ceilings (JSON of
 *   EnvironmentLimits in stored units), below the operator's; null = none.
 * - `teams.platform`: the operator's team, whose admins administer the
 *   deployment; the oldest team (the one `oz server` made on first start).
 * - `environments.updated_by`: who last changed an environment. Personal
 *   environments can only have been changed by their owner; a team
 *   environment never changed since it was made was last changed by its
 *   creator; any other is unknown (null), so its runs get no personal
 *   secrets until someone saves it again.
 * - `runs_pending_team`: the fair claim walks each team's PENDING runs oldest
 *   first.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('teams').addColumn('limit_ceilings', 'text').execute();
  await db.schema
    .alterTable('teams')
    .addColumn('platform', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`UPDATE teams SET platform = 1 WHERE id = (SELECT id FROM teams ORDER BY created_at, id LIMIT 1)`.execute(db);

  await db.schema.alterTable('environments').addColumn('updated_by', 'text').execute();
  await sql`UPDATE environments SET updated_by = owner_user_id WHERE owner_user_id IS NOT NULL`.execute(db);
  await sql`UPDATE environments SET updated_by = creator_id WHERE owner_user_id IS NULL AND updated_at = created_at`.execute(db);

  // The claim no longer walks PENDING runs oldest first across teams, and a
  // second partial index on the same rows let PostgreSQL, on statistics that
  // saw an empty queue, pick it for the per-team lookups (a scan of every
  // PENDING row per team, per claim).
  await db.schema.dropIndex('runs_pending_claim').execute();
  await db.schema.createIndex('runs_pending_team').on('runs').columns(['team_id', 'pending_at', 'id']).where(sql.ref('state'), '=', 'PENDING').execute();
}
