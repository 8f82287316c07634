import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, opendir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskUsageLimits {
  /** Stop once more bytes than this are counted. */
  stopAboveBytes: number;
  /** Stop once more entries than this are seen: a walk makes at most this many lstat calls. */
  maxEntries: number;
  /** Names directly under the root not to walk (mount points of what is not the run's: its image). */
  skipTop?: readonly string[];
}

export interface DiskUsage {
  /** Bytes allocated (st_blocks, so sparse files count what they use). */
  bytes: number;
  /** Directory entries seen: files, directories, links… (an empty file costs an inode too). */
  entries: number;
  /**
   * The walk did not see the whole tree: bytes passed `stopAboveBytes`,
   * entries passed `maxEntries`, or a directory was nested too deep to open.
   * Either way the tree is over its limits (and the counts are lower bounds).
   */
  truncated: boolean;
}

/** A directory to read, with the identity lstat saw when it was listed in its parent (none for the root). */
interface PendingDir {
  path: string;
  dev?: bigint;
  ino?: bigint;
}

/** Entries a workspace may hold: a large checkout with its dependencies, and a walk of a few seconds. */
export const DEFAULT_MAX_ENTRIES = 500_000;

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Walks in progress, by root: the monitor ticks faster than a big walk ends. */
const inFlight = new Map<string, Promise<DiskUsage>>();

/**
 * Disk usage under `root`, stopping early once a limit is passed. The tree
 * belongs to the sandbox and is hostile (it can swap any directory for a
 * symlink at any moment), so symlinks are never followed, a walk never costs
 * more than `maxEntries` lstat calls, and overlapping calls for one root share
 * the walk in progress (whatever limits they pass). Written by hand because
 * `du` cannot stop early.
 */
export function diskUsage(root: string, limits: DiskUsageLimits): Promise<DiskUsage> {
  let walk = inFlight.get(root);
  if (!walk) {
    walk = measure(root, limits).finally(() => inFlight.delete(root));
    inFlight.set(root, walk);
  }
  return walk;
}

async function measure(root: string, { stopAboveBytes, maxEntries, skipTop = [] }: DiskUsageLimits): Promise<DiskUsage> {
  const usage: DiskUsage = { bytes: 0, entries: 0, truncated: false };
  const over = (): boolean => usage.truncated || usage.bytes > stopAboveBytes || usage.entries > maxEntries;
  const pending: PendingDir[] = [{ path: root }];
  while (pending.length > 0 && !over()) {
    const dir = pending.pop() as PendingDir;
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: the last component may have become a symlink since lstat.
      handle = await open(dir.path, DIR_FLAGS);
    } catch (error) {
      // Too deep for a path: fail closed rather than let data hide there.
      if ((error as NodeJS.ErrnoException).code === 'ENAMETOOLONG') usage.truncated = true;
      continue; // Otherwise removed meanwhile, or no longer a directory.
    }
    try {
      // A parent on the path may have become a symlink: read only the very
      // directory lstat saw inside the tree, else skip it.
      const stat = await handle.stat({ bigint: true });
      if (dir.ino !== undefined && (stat.ino !== dir.ino || stat.dev !== dir.dev)) continue;
      // Names resolve through the descriptor, inside this directory, whatever becomes of its path.
      const self = `/proc/self/fd/${handle.fd}`;
      // Streamed, so a directory of millions of names is not read whole.
      for await (const entry of await opendir(self)) {
        if (++usage.entries > maxEntries) break;
        if (dir.path === root && skipTop.includes(entry.name)) continue;
        let child: BigIntStats;
        try {
          // Not entry.isDirectory(): the type can change under us; lstat's answer is the one checked on open.
          child = await lstat(join(self, entry.name), { bigint: true });
        } catch {
          continue; // Removed meanwhile.
        }
        usage.bytes += Number(child.blocks) * 512;
        if (child.isDirectory()) pending.push({ path: join(dir.path, entry.name), dev: child.dev, ino: child.ino });
        if (usage.bytes > stopAboveBytes) break;
      }
    } catch {
      // Removed while being read.
    } finally {
      await handle.close();
    }
  }
  usage.truncated = over();
  return usage;
}
