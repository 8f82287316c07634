import type { Kysely } from 'kysely';

/**
 * Managed secrets, sealed (src/secrets/envelope.ts): never a plaintext value.
 * `owner_user_id` is '' for a team secret, so one unique key covers both scopes.
 * `secret_keyring` holds the master key's verifier: a value only the right
 * master key opens, so a wrong key stops the server at start.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('secrets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
    .addColumn('owner_user_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('setup_only', 'integer', (c) => c.notNull())
    .addColumn('value_cipher', 'text', (c) => c.notNull())
    .addColumn('wrapped_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('secrets_owner_name', ['team_id', 'owner_user_id', 'name'])
    .execute();
  await db.schema
    .createTable('secret_keyring')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('verifier', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
