import type { Kysely } from 'kysely';

/**
 * The dashboard's sign-ins (docs/dashboard.md "Signing in"). A person signs
 * in with an API key once; the browser then holds a session cookie whose hash
 * is `web_sessions.secret_hash`. The session acts as that key: it ends when
 * the person signs out (`ended_at`), at `expires_at`, or when the key expires
 * or goes. `web_login_links` are the one-time links `oz open` prints: used
 * once (`used_at`), within a short `expires_at`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('web_sessions')
    .addColumn('secret_hash', 'text', (c) => c.primaryKey())
    .addColumn('key_id', 'text', (c) => c.notNull().references('api_keys.id').onDelete('cascade'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .execute();
  await db.schema.createIndex('web_sessions_expiry').on('web_sessions').column('expires_at').execute();
  await db.schema
    .createTable('web_login_links')
    .addColumn('secret_hash', 'text', (c) => c.primaryKey())
    .addColumn('key_id', 'text', (c) => c.notNull().references('api_keys.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
}
