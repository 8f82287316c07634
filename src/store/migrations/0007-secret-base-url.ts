import type { Kysely } from 'kysely';

/**
 * `secrets.base_url`: the upstream of a `codex-api-key` secret (an
 * OpenAI-compatible server the model proxy calls with that key); null for
 * every other secret. Metadata, not sealed: it is no secret and is shown.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('secrets').addColumn('base_url', 'text').execute();
}
