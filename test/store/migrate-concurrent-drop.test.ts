import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openFromSpec, resolveTestPostgres } from '../support/store-factories.js';

const url = await resolveTestPostgres();

/**
 * Kysely's migrator introspects every table of the database; schemas that
 * other deployments (or tests) drop at the same moment must not fail our
 * migration.
 */
describe.skipIf(!url)('migrating while other schemas are dropped', () => {
  it('opens every store while 40 other schemas with tables disappear', async () => {
    const admin = new pg.Client({ connectionString: url as string });
    await admin.connect();
    const others = Array.from({ length: 40 }, () => `oz_gone_${randomBytes(5).toString('hex')}`);
    const ours = Array.from({ length: 6 }, () => `oz_test_${randomBytes(6).toString('hex')}`);
    try {
      for (const schema of others) await admin.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id serial primary key, name text)`);
      const dropper = (async () => {
        const client = new pg.Client({ connectionString: url as string });
        await client.connect();
        try {
          for (const schema of others) {
            await client.query(`DROP SCHEMA ${schema} CASCADE`);
            await new Promise((r) => setTimeout(r, 5));
          }
        } finally {
          await client.end();
        }
      })();
      const opened = await Promise.allSettled(
        ours.map(async (schema) => {
          const store = await openFromSpec({ kind: 'postgres', url: url as string, schema });
          await store.close();
        }),
      );
      await dropper;
      expect(opened.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).toEqual([]);
    } finally {
      for (const schema of [...others, ...ours]) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });
});
