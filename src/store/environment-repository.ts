import type { Kysely } from 'kysely';
import type { Environment, EnvironmentPatch, NewEnvironment } from '../core/environment.js';
import { newId } from '../core/ids.js';
import { ownerOfScope, toEnvironment } from './rows.js';
import type { Database } from './schema.js';
import type { StoreContext } from './store-context.js';

/** Environments CRUD. Personal environments are visible only to their owner. */
export class EnvironmentRepository {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: NewEnvironment, at: number): Promise<Environment> {
    const row = {
      id: newId(),
      team_id: input.teamId,
      owner_user_id: ownerOfScope(input.scope),
      creator_id: input.creatorId,
      name: input.name,
      description: input.description,
      config: JSON.stringify(input.config),
      setup_failed: 0,
      created_at: at,
      updated_at: at,
      updated_by: input.creatorId,
    };
    await this.ctx.db.insertInto('environments').values(row).execute();
    return toEnvironment(row);
  }

  private visible(db: Kysely<Database>, teamId: string, viewerId: string | undefined) {
    return db
      .selectFrom('environments')
      .selectAll()
      .where('team_id', '=', teamId)
      .where((eb) => (viewerId === undefined ? eb('owner_user_id', 'is', null) : eb.or([eb('owner_user_id', 'is', null), eb('owner_user_id', '=', viewerId)])));
  }

  async get(teamId: string, id: string, viewerId?: string): Promise<Environment | null> {
    const row = await this.visible(this.ctx.db, teamId, viewerId).where('id', '=', id).executeTakeFirst();
    return row ? toEnvironment(row) : null;
  }

  async list(teamId: string, viewerId?: string): Promise<Environment[]> {
    const rows = await this.visible(this.ctx.db, teamId, viewerId).orderBy('updated_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(toEnvironment);
  }

  async update(teamId: string, id: string, patch: EnvironmentPatch, at: number): Promise<Environment | null> {
    const set: Partial<Database['environments']> = { updated_at: at };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.config !== undefined) set.config = JSON.stringify(patch.config);
    if (patch.setupFailed !== undefined) set.setup_failed = patch.setupFailed ? 1 : 0;
    if (patch.updatedBy !== undefined) set.updated_by = patch.updatedBy;
    const row = await this.ctx.db.updateTable('environments').set(set).where('team_id', '=', teamId).where('id', '=', id).returningAll().executeTakeFirst();
    return row ? toEnvironment(row) : null;
  }

  async delete(teamId: string, id: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('environments').where('team_id', '=', teamId).where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
