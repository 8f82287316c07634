import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from './reap.js';

/**
 * This process's own directory `<parent>/w<pid>` (0711: searchable, not
 * listable), made after removing the `w<pid>` directories of processes that
 * are dead: what a crashed worker left (its runs' support sockets) never
 * piles up, and a live worker's is never touched. Returns its path.
 */
export function ownWorkerDir(parent: string): string {
  mkdirSync(parent, { recursive: true, mode: 0o711 });
  chmodSync(parent, 0o711);
  for (const name of readdirSync(parent)) {
    const pid = /^w(\d+)$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || pidAlive(Number(pid))) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
  }
  // Shared by the workers of one process (tests run several).
  const own = join(parent, `w${process.pid}`);
  mkdirSync(own, { recursive: true, mode: 0o711 });
  chmodSync(own, 0o711);
  if (!lstatSync(own).isDirectory()) throw new Error(`${own} is not a directory`);
  return own;
}

/**
 * A sandbox root sits by default in the shared temp dir: make sure it is
 * this process's own directory, not a symlink or a directory another user
 * made (or can write) to redirect or swap the run directories.
 */
export function checkOwnDirectory(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink() || !stat.isDirectory()) throw new Error(`${path} is not a directory`);
  if (stat.uid !== process.getuid?.()) throw new Error(`${path} belongs to uid ${stat.uid}, not to this user`);
  if ((stat.mode & 0o022) !== 0) throw new Error(`${path} is writable by group or others`);
}
