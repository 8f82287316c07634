import { chmodSync, copyFileSync, existsSync, linkSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Whether every directory from `dir` up to `/` lets others search it. */
function searchableByOthers(dir: string): boolean {
  for (let current = dir; ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) return false;
    if (current === dirname(current)) return true;
  }
}

/**
 * A path to `file` that a sandbox's uid can reach. bwrap resolves every bind
 * source as that uid, even one passed as a descriptor, so a file below a
 * directory others cannot search (a checkout in root's home, a `mktemp -d`)
 * cannot be bound where it is. Then it is staged once in `stageDir` (which the
 * sandboxes can reach): a hard link when the file system allows and the file
 * is readable by others, else a copy made readable (once per worker: put the
 * checkout somewhere searchable, or OZ_SANDBOX_ROOT on its file system, to
 * avoid copying the agent CLIs); named by the file's identity, so a new
 * version gets a new entry.
 */
export function reachablePath(file: string, stageDir: string): string {
  if (searchableByOthers(dirname(file))) return file;
  const stat = statSync(file);
  const target = join(stageDir, `${stat.dev}-${stat.ino}-${stat.size}-${Math.trunc(stat.mtimeMs)}-${basename(file)}`);
  if (existsSync(target)) return target;
  const temp = `${target}.tmp-${process.pid}`;
  try {
    if ((stat.mode & 0o004) === 0) throw new Error('not readable by others: copy it');
    linkSync(file, temp);
  } catch {
    rmSync(temp, { force: true });
    copyFileSync(file, temp);
    chmodSync(temp, (stat.mode & 0o111) !== 0 ? 0o555 : 0o444);
  }
  renameSync(temp, target);
  return target;
}
