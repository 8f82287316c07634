import { newId } from '../core/ids.js';
import type { NewWorkerToken, WorkerToken } from '../core/identity.js';
import { toWorkerToken } from './rows.js';
import type { StoreContext } from './store-context.js';
import { rethrowUnique } from './unique-violation.js';

/** Worker tokens: created by admins, found by hash, revoked for good. */
export class WorkerTokenRepository {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: NewWorkerToken, at: number): Promise<WorkerToken> {
    const row = {
      id: newId(),
      name: input.name,
      prefix: input.prefix,
      secret_hash: input.secretHash,
      created_by: input.createdBy,
      created_at: at,
      revoked_at: null,
      last_used_at: null,
    };
    await this.ctx.db
      .insertInto('worker_tokens')
      .values(row)
      .execute()
      .catch(rethrowUnique('name', `a worker token named ${input.name} already exists`));
    return toWorkerToken(row);
  }

  async list(): Promise<WorkerToken[]> {
    const rows = await this.ctx.db.selectFrom('worker_tokens').selectAll().orderBy('created_at', 'asc').orderBy('id').execute();
    return rows.map(toWorkerToken);
  }

  async findByHash(secretHash: string): Promise<WorkerToken | null> {
    const row = await this.ctx.db.selectFrom('worker_tokens').selectAll().where('secret_hash', '=', secretHash).where('revoked_at', 'is', null).executeTakeFirst();
    return row ? toWorkerToken(row) : null;
  }

  async revoke(id: string, at: number): Promise<boolean> {
    const result = await this.ctx.db.updateTable('worker_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}
