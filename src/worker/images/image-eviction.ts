/** An unpacked image root in the store, as eviction sees it. */
export interface StoredRoot {
  digest: string;
  bytes: number;
  /** When a run last asked for it (ms since the epoch). */
  lastUsedMs: number;
}

/**
 * The roots to remove so the others fit in `maxBytes`: least recently used
 * first, never one a live run uses (`inUse`), which may leave the store over
 * its limit until those runs end. Pure, so the policy is tested on its own.
 */
export function rootsToEvict(roots: readonly StoredRoot[], inUse: ReadonlySet<string>, maxBytes: number): string[] {
  let total = roots.reduce((sum, root) => sum + root.bytes, 0);
  const evicted: string[] = [];
  for (const root of [...roots].sort((a, b) => a.lastUsedMs - b.lastUsedMs)) {
    if (total <= maxBytes) break;
    if (inUse.has(root.digest)) continue;
    evicted.push(root.digest);
    total -= root.bytes;
  }
  return evicted;
}
