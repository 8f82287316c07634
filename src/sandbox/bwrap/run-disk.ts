import { execFile } from 'node:child_process';
import { chmodSync, chownSync, closeSync, ftruncateSync, mkdirSync, openSync, rmSync, statfsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountsUnder, unmount } from '../reap.js';
import { MIB } from '../../core/units.js';

const run = promisify(execFile);

/** The host tools a per-run file system needs (absolute paths). */
export interface DiskTools {
  mkfs: string;
  mount: string;
  umount: string;
}

/** Where a run's `/workspace` and `/tmp` live on the host, and how full they are. */
export interface RunDisk {
  readonly workspace: string;
  readonly tmp: string;
  /** Where a run on an image keeps its writable layer (src/sandbox/bwrap/image-root.ts). */
  readonly layer: string;
  /** The run's own file system's mount point; null when the directories are plain ones (the walk measures them). */
  readonly mountPoint: string | null;
  /** The run's file system is full (kernel-enforced disks only; a walk is the caller's). */
  full(): boolean;
  /** Unmount and delete (the sandbox's processes must be dead). Idempotent. */
  remove(): Promise<void>;
}

/** Below this much space left, or with no inode left, a run's file system counts as full (its limit is hit). */
export function fullMargin(totalBytes: number): number {
  return Math.min(MIB, Math.floor(totalBytes / 50));
}

const IMAGE = 'disk.img';

/** Where a run's file system is mounted in its directory. */
export function diskMountPoint(runDir: string): string {
  return join(runDir, 'disk');
}

/**
 * The image for a limit of `limitBytes`: ext4's journal, inode tables and
 * group metadata take 3% (10 GiB) to 12% (16 MiB) of it, so it is that much
 * larger and the run can store about its limit, never much less.
 */
export function imageBytes(limitBytes: number): number {
  return limitBytes + Math.ceil(limitBytes / 16) + 8 * MIB;
}

/**
 * The disk limit as a file system the kernel enforces (docs/sandboxes.md
 * "Limits"): each run gets a sparse ext4 image of its `disk_mb`, loop-mounted
 * by the (root) worker under the run's directory, holding `workspace/` and
 * `tmp/`. A file deleted while open still takes space in it, so nothing the
 * run writes can take more of the host than the image's size. Needs root,
 * loop devices, and mkfs.ext4; {@link ImageDisks.probe} says which is missing.
 */
export class ImageDisks {
  constructor(private readonly tools: DiskTools) {}

  /** Make, mount and unmount a small image under `dir`: null if it works here, else why not. */
  static async probe(dir: string, tools: DiskTools): Promise<string | null> {
    const disks = new ImageDisks(tools);
    const probeDir = join(dir, `disk-probe-${process.pid}`);
    mkdirSync(probeDir, { mode: 0o700 });
    try {
      const disk = await disks.create(probeDir, process.getuid?.() ?? 0, 16 * 1024 * 1024);
      await disk.remove();
      return null;
    } catch (error) {
      return (error as Error).message.split('\n')[0] ?? 'unknown error';
    } finally {
      for (const point of mountsUnder(probeDir)) unmount(point, tools.umount);
      if (mountsUnder(probeDir).length === 0) rmSync(probeDir, { recursive: true, force: true });
    }
  }

  /** A file system holding about `bytes` for a run in `dir` (the run's own directory), its two directories owned by `uid`. */
  async create(dir: string, uid: number, bytes: number): Promise<RunDisk> {
    const { tools } = this;
    const image = join(dir, IMAGE);
    const mountPoint = diskMountPoint(dir);
    const fd = openSync(image, 'wx', 0o600);
    try {
      ftruncateSync(fd, imageBytes(bytes)); // sparse: takes what is written, up to its size
    } finally {
      closeSync(fd);
    }
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    const removeAll = (): void => {
      unmount(mountPoint, tools.umount);
      if (mountsUnder(mountPoint).length === 0) {
        rmSync(mountPoint, { recursive: true, force: true });
        rmSync(image, { force: true });
      }
    };
    try {
      // A journal (without one ext4 re-reads recently freed inodes on each
      // create: docs/benchmarks.md); no blocks reserved for root; no zeroing
      // of inode tables or journal, nor discard: a fresh sparse file reads as zeros.
      await run(tools.mkfs, ['-F', '-q', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', '-L', 'oz-run', image], { env });
      mkdirSync(mountPoint, { mode: 0o711 });
      // nosuid/nodev whatever the image holds; noinit_itable: no background zeroing (see above).
      await run(tools.mount, ['-t', 'ext4', '-o', 'loop,nosuid,nodev,noatime,noinit_itable', image, mountPoint], { env });
      // The file system's root: searchable by the run's uid (bwrap resolves its binds as that uid), not listable.
      chmodSync(mountPoint, 0o711);
      for (const sub of ['workspace', 'tmp', 'layer']) {
        mkdirSync(join(mountPoint, sub), { mode: 0o700 });
        chownSync(join(mountPoint, sub), uid, uid);
      }
    } catch (error) {
      removeAll();
      const stderr = (error as { stderr?: string }).stderr?.trim();
      throw new Error(`the run's file system could not be made: ${stderr || (error as Error).message}`);
    }
    let removed = false;
    return {
      workspace: join(mountPoint, 'workspace'),
      tmp: join(mountPoint, 'tmp'),
      layer: join(mountPoint, 'layer'),
      mountPoint,
      full: () => {
        if (removed) return false;
        try {
          const stat = statfsSync(mountPoint);
          return stat.bavail * stat.bsize < fullMargin(stat.blocks * stat.bsize) || stat.ffree === 0;
        } catch {
          return false;
        }
      },
      remove: async () => {
        if (removed) return;
        // Asynchronously: unmounting writes back what is dirty, which can take a while.
        for (const args of [[mountPoint], ['-l', mountPoint]]) {
          if (!mountsUnder(mountPoint).includes(mountPoint)) break;
          await run(tools.umount, args, { env }).catch(() => {});
        }
        if (!unmount(mountPoint, tools.umount)) throw new Error(`${mountPoint} could not be unmounted`);
        removed = true;
        try {
          unlinkSync(image);
        } catch {
          // Gone already.
        }
      },
    };
  }
}

/** Plain directories in the run's directory: the disk limit is the worker's periodic walk. */
export function plainDisk(dir: string, uid: number, chown: boolean): RunDisk {
  for (const sub of ['workspace', 'tmp', 'layer']) {
    mkdirSync(join(dir, sub), { mode: 0o700 });
    if (chown) chownSync(join(dir, sub), uid, uid);
  }
  return { workspace: join(dir, 'workspace'), tmp: join(dir, 'tmp'), layer: join(dir, 'layer'), mountPoint: null, full: () => false, remove: async () => {} };
}
