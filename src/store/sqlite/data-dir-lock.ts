import Database from 'better-sqlite3';
import { join } from 'node:path';
import { OzError } from '../../core/errors.js';
import { ensurePrivateFile } from './private-files.js';

/**
 * One Oz process per data directory. The lock is a small SQLite file held in
 * `locking_mode=EXCLUSIVE` with a write committed: SQLite keeps the OS lock
 * (fcntl) until the connection closes, and the kernel drops it the moment the
 * process dies — so a crash never leaves a stale lock behind, unlike a PID file
 * or a mkdir lock (proper-lockfile) that must guess staleness from mtimes.
 * A second process (or a second open in the same process) gets SQLITE_BUSY at
 * once and a clear error.
 */
export interface DataDirLock {
  release(): void;
}

export function acquireDataDirLock(dataDir: string): DataDirLock {
  const path = join(dataDir, 'oz.lock');
  ensurePrivateFile(path); // 0600, not the umask's 0644 (its -journal gets the same)
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER, since INTEGER)');
    db.prepare('DELETE FROM holder').run();
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new OzError('conflict', `data directory ${dataDir} is in use by another Oz process; stop it or pass another --data-dir / OZ_DATA_DIR`, { reason: 'data_dir_locked' });
    }
    throw error;
  }
  return { release: () => db.close() };
}
