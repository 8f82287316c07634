import { newId } from '../core/ids.js';
import type { EnvironmentLimits } from '../core/environment.js';
import type { ApiKey, NewApiKey, Team, TeamPatch, User, UserRole } from '../core/identity.js';
import { toApiKey, toTeam, toUser } from './rows.js';
import type { Database } from './schema.js';
import type { StoreContext } from './store-context.js';
import { rethrowUnique } from './unique-violation.js';

const ceilingsColumn = (ceilings: EnvironmentLimits | undefined): string | null => (ceilings && Object.keys(ceilings).length > 0 ? JSON.stringify(ceilings) : null);

/** Teams, users and API keys. */
export class IdentityRepository {
  constructor(private readonly ctx: StoreContext) {}

  /** The first team of a deployment is the operator's (`platform`): its admins administer every team. */
  async createTeam(input: { name: string; maxConcurrentRuns: number; limitCeilings?: EnvironmentLimits }, at: number): Promise<Team> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const first = (await tx.selectFrom('teams').select('id').limit(1).executeTakeFirst()) === undefined;
      const row = {
        id: newId(),
        name: input.name,
        max_concurrent_runs: input.maxConcurrentRuns,
        created_at: at,
        limit_ceilings: ceilingsColumn(input.limitCeilings),
        platform: first ? 1 : 0,
      };
      await tx
        .insertInto('teams')
        .values(row)
        .execute()
        .catch(rethrowUnique('name', `team ${input.name} already exists`));
      return toTeam(row);
    });
  }

  /** Change a team's concurrency limit or its ceilings (given fields replace); null when there is no such team. */
  async updateTeam(id: string, patch: TeamPatch): Promise<Team | null> {
    const set: Partial<Database['teams']> = {};
    if (patch.maxConcurrentRuns !== undefined) set.max_concurrent_runs = patch.maxConcurrentRuns;
    if (patch.limitCeilings !== undefined) set.limit_ceilings = ceilingsColumn(patch.limitCeilings);
    if (Object.keys(set).length === 0) return this.getTeam(id);
    const row = await this.ctx.db.updateTable('teams').set(set).where('id', '=', id).returningAll().executeTakeFirst();
    return row ? toTeam(row) : null;
  }

  async getTeam(id: string): Promise<Team | null> {
    const row = await this.ctx.db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTeam(row) : null;
  }

  async getTeamByName(name: string): Promise<Team | null> {
    const row = await this.ctx.db.selectFrom('teams').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toTeam(row) : null;
  }

  async listTeams(): Promise<Team[]> {
    const rows = await this.ctx.db.selectFrom('teams').selectAll().orderBy('created_at', 'asc').orderBy('id').execute();
    return rows.map(toTeam);
  }

  async listUsers(teamId: string): Promise<User[]> {
    const rows = await this.ctx.db.selectFrom('users').selectAll().where('team_id', '=', teamId).orderBy('created_at', 'asc').orderBy('id').execute();
    return rows.map(toUser);
  }

  async countTeams(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('teams')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createUser(input: { teamId: string; email: string; displayName: string | null; role: UserRole }, at: number): Promise<User> {
    const row = {
      id: newId(),
      team_id: input.teamId,
      email: input.email,
      display_name: input.displayName,
      role: input.role,
      created_at: at,
    };
    await this.ctx.db
      .insertInto('users')
      .values(row)
      .execute()
      .catch(rethrowUnique('email', `user ${input.email} already exists`));
    return toUser(row);
  }

  async getUser(id: string): Promise<User | null> {
    const row = await this.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toUser(row) : null;
  }

  async getUserByEmail(email: string): Promise<User | null> {
    const row = await this.ctx.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
    return row ? toUser(row) : null;
  }

  async createApiKey(input: NewApiKey, at: number): Promise<ApiKey> {
    const row = {
      id: newId(),
      team_id: input.teamId,
      user_id: input.userId,
      name: input.name,
      prefix: input.prefix,
      secret_hash: input.secretHash,
      created_at: at,
      expires_at: input.expiresAt,
      last_used_at: null,
    };
    await this.ctx.db.insertInto('api_keys').values(row).execute();
    return toApiKey(row);
  }

  findApiKeyByHash(secretHash: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null> {
    return this.findApiKey('secret_hash', secretHash, at);
  }

  /** A key by its id, with its user and team, while it has not expired (a dashboard session acts as its key). */
  findApiKeyById(id: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null> {
    return this.findApiKey('id', id, at);
  }

  private async findApiKey(column: 'secret_hash' | 'id', value: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null> {
    const row = await this.ctx.db
      .selectFrom('api_keys')
      .selectAll()
      .where(column, '=', value)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', at)]))
      .executeTakeFirst();
    if (!row) return null;
    const [user, team] = await Promise.all([this.getUser(row.user_id), this.getTeam(row.team_id)]);
    if (!user || !team) return null;
    return { key: toApiKey(row), user, team };
  }

  async listApiKeys(teamId: string, userId?: string): Promise<ApiKey[]> {
    let query = this.ctx.db.selectFrom('api_keys').selectAll().where('team_id', '=', teamId);
    if (userId !== undefined) query = query.where('user_id', '=', userId);
    const rows = await query.orderBy('created_at', 'asc').orderBy('id', 'asc').execute();
    return rows.map(toApiKey);
  }

  async expireApiKey(teamId: string, keyId: string, at: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('api_keys')
      .set({ expires_at: at })
      .where('team_id', '=', teamId)
      .where('id', '=', keyId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', at)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}
