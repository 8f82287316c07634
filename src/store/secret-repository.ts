import { newId } from '../core/ids.js';
import type { Scope } from '../core/environment.js';
import type { NewSecret, SealedSecret, Secret, SecretPatch, SecretType } from '../core/secret.js';
import { ownerOfScope, scopeOfOwner } from './rows.js';
import type { SecretsTable } from './schema.js';
import type { StoreContext } from './store-context.js';
import { rethrowUnique } from './unique-violation.js';

/** Secrets store the team scope as '' (not null), so the unique (team, owner, name) index covers team secrets too. */
function ownerOf(scope: Scope): string {
  return ownerOfScope(scope) ?? '';
}

function toSealed(row: SecretsTable): SealedSecret {
  return {
    id: row.id,
    teamId: row.team_id,
    scope: scopeOfOwner(row.owner_user_id),
    name: row.name,
    type: row.type as SecretType,
    description: row.description,
    setupOnly: Number(row.setup_only) === 1,
    ...(row.base_url ? { baseUrl: row.base_url } : {}),
    valueCipher: row.value_cipher,
    wrappedKey: row.wrapped_key,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toSecret(row: SecretsTable): Secret {
  const { valueCipher: _value, wrappedKey: _key, ...secret } = toSealed(row);
  return secret;
}

/**
 * Secrets, sealed at rest. Reads that return values' ciphertexts are for the
 * run-start resolution and rotation only; listings return metadata.
 */
export class SecretRepository {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: NewSecret, at: number): Promise<Secret> {
    const row: SecretsTable = {
      id: newId(),
      team_id: input.teamId,
      owner_user_id: ownerOf(input.scope),
      name: input.name,
      type: input.type,
      description: input.description,
      setup_only: input.setupOnly ? 1 : 0,
      base_url: input.baseUrl ?? null,
      value_cipher: input.valueCipher,
      wrapped_key: input.wrappedKey,
      created_at: at,
      updated_at: at,
    };
    const scope = input.scope.type === 'user' ? 'a personal' : 'a team';
    await this.ctx.db
      .insertInto('secrets')
      .values(row)
      .execute()
      .catch(rethrowUnique('name', `${scope} secret named ${input.name} already exists`));
    return toSecret(row);
  }

  /** The team's secrets and `viewerId`'s personal ones (metadata), team first, by name. */
  async list(teamId: string, viewerId: string): Promise<Secret[]> {
    const rows = await this.ctx.db
      .selectFrom('secrets')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('owner_user_id', 'in', ['', viewerId])
      .orderBy('owner_user_id')
      .orderBy('name')
      .execute();
    return rows.map(toSecret);
  }

  /** Sealed secrets a run may draw from: the team's, plus `userId`'s personal ones when given. */
  async sealedFor(teamId: string, userId: string | null): Promise<SealedSecret[]> {
    const rows = await this.ctx.db
      .selectFrom('secrets')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('owner_user_id', 'in', userId ? ['', userId] : [''])
      .execute();
    return rows.map(toSealed);
  }

  async get(teamId: string, scope: Scope, name: string): Promise<SealedSecret | null> {
    const row = await this.ctx.db
      .selectFrom('secrets')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('owner_user_id', '=', ownerOf(scope))
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? toSealed(row) : null;
  }

  async update(teamId: string, scope: Scope, name: string, patch: SecretPatch, at: number): Promise<Secret | null> {
    const set: Partial<SecretsTable> = { updated_at: at };
    if (patch.type !== undefined) set.type = patch.type;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.setupOnly !== undefined) set.setup_only = patch.setupOnly ? 1 : 0;
    if (patch.baseUrl !== undefined) set.base_url = patch.baseUrl;
    if (patch.sealed) {
      set.value_cipher = patch.sealed.valueCipher;
      set.wrapped_key = patch.sealed.wrappedKey;
    }
    const row = await this.ctx.db
      .updateTable('secrets')
      .set(set)
      .where('team_id', '=', teamId)
      .where('owner_user_id', '=', ownerOf(scope))
      .where('name', '=', name)
      .returningAll()
      .executeTakeFirst();
    return row ? toSecret(row) : null;
  }

  async delete(teamId: string, scope: Scope, name: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('secrets').where('team_id', '=', teamId).where('owner_user_id', '=', ownerOf(scope)).where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** The master key's verifier, or null before the first start with secrets support. */
  async verifier(): Promise<string | null> {
    const row = await this.ctx.db.selectFrom('secret_keyring').select('verifier').where('id', '=', 'master').executeTakeFirst();
    return row?.verifier ?? null;
  }

  /** Record the verifier of a new deployment's master key; false when another server recorded one first. */
  async initVerifier(verifier: string, at: number): Promise<boolean> {
    try {
      await this.ctx.db.insertInto('secret_keyring').values({ id: 'master', verifier, created_at: at }).execute();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Rotation: re-wrap every data key (`rewrap` returns the new wrapped key) and
   * replace the verifier, in one transaction: all or nothing.
   */
  async rewrapAll(rewrap: (secret: SealedSecret) => string, verifier: string): Promise<number> {
    return this.ctx.ops.writeTx(this.ctx.db, async (trx) => {
      const rows = await trx.selectFrom('secrets').selectAll().execute();
      for (const row of rows) {
        await trx
          .updateTable('secrets')
          .set({ wrapped_key: rewrap(toSealed(row)) })
          .where('id', '=', row.id)
          .execute();
      }
      await trx.updateTable('secret_keyring').set({ verifier }).where('id', '=', 'master').execute();
      return rows.length;
    });
  }
}
