import { newId } from '../core/ids.js';
import type { ApiKey, NewApiKey, Team, User, UserRole } from '../core/identity.js';
import { toApiKey, toTeam, toUser } from './rows.js';
import type { StoreContext } from './store-context.js';
import { rethrowUnique } from './unique-violation.js';

/** Teams, users and API keys. */
export class IdentityRepository {
  constructor(private readonly ctx: StoreContext) {}

  async createTeam(input: { name: string; maxConcurrentRuns: number }, at: number): Promise<Team> {
    const row = { id: newId(), name: input.name, max_concurrent_runs: input.maxConcurrentRuns, created_at: at };
    await this.ctx.db.insertInto('teams').values(row).execute().catch(rethrowUnique('name', `team ${input.name} already exists`));
    return toTeam(row);
  }

  async getTeam(id: string): Promise<Team | null> {
    const row = await this.ctx.db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTeam(row) : null;
  }

  async getTeamByName(name: string): Promise<Team | null> {
    const row = await this.ctx.db.selectFrom('teams').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toTeam(row) : null;
  }

  async countTeams(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('teams')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createUser(
    input: { teamId: string; email: string; displayName: string | null; role: UserRole },
    at: number,
  ): Promise<User> {
    const row = {
      id: newId(),
      team_id: input.teamId,
      email: input.email,
      display_name: input.displayName,
      role: input.role,
      created_at: at,
    };
    await this.ctx.db.insertInto('users').values(row).execute().catch(rethrowUnique('email', `user ${input.email} already exists`));
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

  async findApiKeyByHash(secretHash: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null> {
    const row = await this.ctx.db
      .selectFrom('api_keys')
      .selectAll()
      .where('secret_hash', '=', secretHash)
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
