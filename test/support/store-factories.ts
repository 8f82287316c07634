import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.js';
import { openSqliteFile } from '../../src/store/sqlite/open-sqlite-store.js';
import type { SqlStore } from '../../src/store/sql-store.js';

/** How a second process finds the same database. */
export type StoreSpec = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; schema: string };

export interface StoreHandle {
  store: SqlStore;
  spec: StoreSpec;
  cleanup(): Promise<void>;
}

export interface StoreFactory {
  name: string;
  open(): Promise<StoreHandle>;
}

export async function openFromSpec(spec: StoreSpec): Promise<SqlStore> {
  return spec.kind === 'sqlite' ? openSqliteFile(spec.file) : openPostgresStore({ url: spec.url, schema: spec.schema });
}

/** A fresh SQLite file in its own temp directory per handle. */
export const sqliteFactory: StoreFactory = {
  name: 'sqlite',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'oz-store-'));
    const spec: StoreSpec = { kind: 'sqlite', file: join(dir, 'oz.db') };
    const store = await openFromSpec(spec);
    return {
      store,
      spec,
      async cleanup() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** A fresh PostgreSQL schema per handle, dropped on cleanup. */
export function postgresFactory(url: string): StoreFactory {
  return {
    name: 'postgres',
    async open() {
      const schema = `oz_test_${randomBytes(6).toString('hex')}`;
      const spec: StoreSpec = { kind: 'postgres', url, schema };
      const store = await openFromSpec(spec);
      return {
        store,
        spec,
        async cleanup() {
          await store.close();
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          try {
            await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          } finally {
            await client.end();
          }
        },
      };
    },
  };
}

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The PostgreSQL URL for tests: OZ_TEST_DATABASE_URL, else the local default.
 * Unreachable → `null` (the suite is skipped) — except under CI=true, where the
 * PostgreSQL half must run, so this throws and the suite fails.
 */
export async function resolveTestPostgres(): Promise<string | null> {
  const url = process.env.OZ_TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (error) {
    if (process.env.CI === 'true') {
      throw new Error(`CI=true but PostgreSQL at ${url} is unreachable: ${String(error)}`);
    }
    console.warn(`PostgreSQL at ${url} unreachable; skipping the PostgreSQL store suite (${String(error)})`);
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}
