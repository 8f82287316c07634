import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { join } from 'node:path';
import { migrateToLatest } from '../migrations/index.js';
import type { Database as Schema } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { acquireDataDirLock } from './data-dir-lock.js';
import { ensurePrivateDir, ensurePrivateFile, tightenIfPresent } from './private-files.js';
import { sqliteOps } from './sqlite-ops.js';

/** The embedded database file inside a data directory. */
export function sqliteFileIn(dataDir: string): string {
  return join(dataDir, 'oz.db');
}

/**
 * Open the embedded store in a data directory (0700, created if missing): take
 * the directory lock, open `oz.db` (0600, as its -wal and -shm) in WAL mode,
 * apply migrations.
 */
export async function openSqliteDataDir(dataDir: string): Promise<SqlStore> {
  ensurePrivateDir(dataDir);
  const lock = acquireDataDirLock(dataDir);
  try {
    return await openSqliteFile(sqliteFileIn(dataDir), async () => lock.release());
  } catch (error) {
    lock.release();
    throw error;
  }
}

/**
 * Open a SQLite database file without the directory lock: for tests and
 * benchmarks that deliberately put several processes on one file.
 */
export async function openSqliteFile(file: string, onClose: () => Promise<void> = async () => {}): Promise<SqlStore> {
  const onDisk = file !== ':memory:' && file !== '' && !file.startsWith('file:');
  // Owner-only from the start: SQLite gives -wal / -shm the database file's mode.
  if (onDisk) ensurePrivateFile(file);
  const sqlite = new Database(file, { timeout: 10_000 });
  // WAL: readers never block the writer; NORMAL sync is durable across a
  // process crash (a power loss may drop the last transactions, not corrupt).
  sqlite.pragma('journal_mode = WAL');
  // Ones an older version left 0644 (new ones already have the file's 0600).
  if (onDisk) for (const suffix of ['-wal', '-shm']) tightenIfPresent(`${file}${suffix}`);
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new SqlStore(db, sqliteOps, onClose);
}
