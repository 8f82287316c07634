import { execFile } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { idmappedBind } from './idmapped-mount.js';
import { mountsUnder, unmount } from '../reap.js';

const run = promisify(execFile);

/** The host tools an image root needs (absolute paths). */
export interface ImageRootTools {
  mount: string;
  umount: string;
  unshare: string;
}

/** A warm start's saved state (src/worker/snapshots/): the workspace and, on an image, the writable layer, both owned by host root. */
export interface RestoredState {
  workspace: string;
  layer: string | null;
}

/** Where a run's layered mounts are in its directory, in unmount order (overlays before what they stack). */
export function imageRootMounts(runDir: string): { root: string; workspace: string; lower: string; savedLayer: string; savedWorkspace: string } {
  return {
    root: join(runDir, 'root'),
    workspace: join(runDir, 'ws'),
    lower: join(runDir, 'lower'),
    savedLayer: join(runDir, 'saved-layer'),
    savedWorkspace: join(runDir, 'saved-ws'),
  };
}

/** Where a launch on an image root mounts something (bwrap makes what is missing). */
export const IMAGE_MOUNT_POINTS = ['/oz', '/proc', '/dev', '/tmp', '/workspace', '/etc/resolv.conf', '/etc/hosts'] as const;

/**
 * bwrap resolves a mount point through the symlinks on its way, before the
 * new root is in place: an image's (or a setup's) `/etc/resolv.conf ->
 * /oldroot/tmp/x` would make it create a file on the host. Before each
 * launch on an image root (no process of the run alive, so nothing swaps
 * them meanwhile), any symlink on the way to a mount point is removed from
 * the run's layer (the image itself is never touched); bwrap then makes a
 * plain directory or file there.
 */
export function clearMountPoints(root: string, points: readonly string[] = IMAGE_MOUNT_POINTS): void {
  for (const point of points) {
    let path = root;
    for (const part of point.split('/').filter(Boolean)) {
      path = join(path, part);
      let link: boolean;
      try {
        link = lstatSync(path).isSymbolicLink();
      } catch {
        break; // absent from here on: bwrap makes it
      }
      if (link) {
        unlinkSync(path);
        break;
      }
    }
  }
}

export interface RunLayers {
  /** The overlay root on the image, or null (the host's system). */
  root: string | null;
  /** The overlay workspace on a saved state, or null (the run disk's plain directory). */
  workspace: string | null;
  /** Unmount everything (the sandbox's processes must be dead). */
  remove: () => void;
}

/**
 * A run's layered file systems (docs/sandboxes.md "Images", "Warm starts"):
 *
 * - on an image, the root: the image's unpacked root (shared by every run on
 *   it, never written), under a saved layer when the run starts warm, under
 *   the run's own writable layer on its disk (so its limit counts what
 *   setup installs);
 * - on a saved state, the workspace: the saved workspace under the run
 *   disk's workspace directory as the writable layer.
 *
 * Every shared lower layer is owned by host root on disk and seen through
 * an idmapped mount as owned by the run's host uid, so nothing is copied or
 * chowned per run. Overlay options are relative to the run directory: the
 * kernel shows them in the sandbox's mountinfo, which must name no host path.
 */
export async function mountRunLayers(options: {
  runDir: string;
  imageRoot: string | null;
  restored: RestoredState | null;
  disk: { workspace: string; layer: string };
  uid: number;
  tools: ImageRootTools;
}): Promise<RunLayers> {
  const { runDir, imageRoot, restored, disk, uid, tools } = options;
  const points = imageRootMounts(runDir);
  const remove = (): void => {
    for (const point of Object.values(points)) {
      if (!unmount(point, tools.umount)) throw new Error(`${point} could not be unmounted`);
    }
  };
  const rel = (path: string): string => relative(runDir, path);
  const overlay = async (lowers: string[], upper: string, work: string, target: string): Promise<void> => {
    const lowerdir = lowers.map(rel).join(':');
    await run(tools.mount, ['-t', 'overlay', 'oz-image', '-o', `lowerdir=${lowerdir},upperdir=${rel(upper)},workdir=${rel(work)},nosuid,nodev`, target], {
      cwd: runDir,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  };
  const own = (dir: string): void => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, uid, uid);
  };
  try {
    const binds: { source: string; target: string }[] = [];
    if (imageRoot) binds.push({ source: imageRoot, target: points.lower });
    if (imageRoot && restored?.layer) binds.push({ source: restored.layer, target: points.savedLayer });
    if (restored) binds.push({ source: restored.workspace, target: points.savedWorkspace });
    for (const { target } of binds) mkdirSync(target, { mode: 0o700 });
    if (binds.length > 0) await idmappedBind(binds, uid, tools.unshare);
    let root: string | null = null;
    if (imageRoot) {
      own(join(disk.layer, 'upper'));
      own(join(disk.layer, 'work'));
      mkdirSync(points.root, { mode: 0o711 });
      await overlay(restored?.layer ? [points.savedLayer, points.lower] : [points.lower], join(disk.layer, 'upper'), join(disk.layer, 'work'), points.root);
      root = points.root;
    }
    let workspace: string | null = null;
    if (restored) {
      own(join(disk.layer, 'ws-work'));
      mkdirSync(points.workspace, { mode: 0o711 });
      await overlay([points.savedWorkspace], disk.workspace, join(disk.layer, 'ws-work'), points.workspace);
      workspace = points.workspace;
    }
    return { root, workspace, remove };
  } catch (error) {
    if (mountsUnder(runDir).length > 0) remove();
    // Runs see this message: it names the run directory, not where it is on the host.
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`the run's image root could not be mounted: ${(stderr || (error as Error).message).replaceAll(runDir, '<run directory>')}`);
  }
}
