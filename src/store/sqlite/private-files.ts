import { chmodSync, closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * The data directory holds the database (every secret's sealed value, API key
 * hashes), its lock and the master key: nobody but its owner may read it. Modes
 * are set explicitly after creating, never left to the umask, and files and
 * directories someone left group- or world-accessible are tightened — when
 * they are ours (another user's files are theirs to fix).
 */
const OTHERS = 0o077;

function ours(uid: number): boolean {
  const me = process.getuid?.();
  return me === undefined || me === uid;
}

/** `dir` (and missing parents) created if needed; `dir` itself ends up 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if ((st.mode & 0o777) !== 0o700 && ours(st.uid)) chmodSync(dir, 0o700);
}

/**
 * `file` created if missing, 0600 either way. SQLite gives its -wal, -shm and
 * -journal files the main file's mode, so creating the database this way
 * before SQLite opens it covers those too.
 */
export function ensurePrivateFile(file: string): void {
  const fd = openSync(file, constants.O_RDONLY | constants.O_CREAT, 0o600);
  try {
    const st = fstatSync(fd);
    if ((st.mode & OTHERS) !== 0 && ours(st.uid)) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

/** Tighten `file` to 0600 if it exists (the -wal / -shm of a database created by an older version). */
export function tightenIfPresent(file: string): void {
  let st;
  try {
    st = statSync(file);
  } catch {
    return;
  }
  if ((st.mode & OTHERS) !== 0 && ours(st.uid)) chmodSync(file, 0o600);
}
