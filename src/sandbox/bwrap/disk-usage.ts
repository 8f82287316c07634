import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes allocated under `root` (st_blocks, so sparse files count what they
 * use), stopping early once `stopAbove` is passed. Never follows symlinks: the
 * tree belongs to the sandbox and is hostile. Written by hand because `du`
 * cannot stop early, and a hostile tree should not cost more than it must.
 */
export async function diskUsage(root: string, stopAbove: number): Promise<number> {
  let total = 0;
  const pending = [root];
  while (pending.length > 0 && total <= stopAbove) {
    const dir = pending.pop() as string;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue; // Removed meanwhile, or replaced by a non-directory.
    }
    for (const name of names) {
      const path = join(dir, name);
      try {
        const stat = await lstat(path);
        total += stat.blocks * 512;
        if (stat.isDirectory()) pending.push(path);
      } catch {
        // Removed meanwhile.
      }
    }
  }
  return total;
}
