import { constants, type Dirent } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const CHUNK = 1024 * 1024;

/**
 * Whether any regular file under `root` (the worker's own copy; symlinks are
 * not followed) contains one of `values`, as bytes. Written by hand: a
 * streaming multi-needle search with the overlap a needle can straddle,
 * which is what keeps a setup-only secret out of a snapshot.
 */
export async function containsAny(root: string, values: readonly string[]): Promise<boolean> {
  const needles = values.filter((value) => value.length > 0).map((value) => Buffer.from(value));
  if (needles.length === 0) return false;
  const overlap = Math.max(...needles.map((needle) => needle.length)) - 1;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile() && (await fileContains(path, needles, overlap))) return true;
    }
  }
  return false;
}

async function fileContains(path: string, needles: readonly Buffer[], overlap: number): Promise<boolean> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  if (!handle) return false;
  try {
    let carry = Buffer.alloc(0);
    const chunk = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, null);
      if (bytesRead === 0) return false;
      const window = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      if (needles.some((needle) => window.includes(needle))) return true;
      carry = window.subarray(Math.max(0, window.length - overlap));
    }
  } finally {
    await handle.close();
  }
}
