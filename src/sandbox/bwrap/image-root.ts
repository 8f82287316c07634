import { execFile } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
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

/** Where a run's image root is mounted in its directory, and the image seen through its uid (in unmount order). */
export function imageRootMounts(runDir: string): { root: string; lower: string } {
  return { root: join(runDir, 'root'), lower: join(runDir, 'lower') };
}

/**
 * A run's root file system on an image (docs/sandboxes.md "Images"): the
 * image's unpacked root, shared by every run on it and never written, seen
 * through an idmapped mount as owned by the run's host uid (so the run's
 * in-sandbox root owns it), under an overlay whose upper layer is the run's
 * own, on the run's disk (so its limit counts what setup installs). Returns
 * the overlay's mount point; `remove` unmounts both (the sandbox's processes
 * must be dead).
 */
export async function mountImageRoot(options: {
  runDir: string;
  imageRoot: string;
  layerDir: string;
  uid: number;
  tools: ImageRootTools;
}): Promise<{ root: string; remove: () => void }> {
  const { runDir, imageRoot, layerDir, uid, tools } = options;
  const { root, lower } = imageRootMounts(runDir);
  const upper = join(layerDir, 'upper');
  const work = join(layerDir, 'work');
  const remove = (): void => {
    for (const point of [root, lower]) {
      if (!unmount(point, tools.umount)) throw new Error(`${point} could not be unmounted`);
    }
  };
  try {
    for (const dir of [upper, work]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chownSync(dir, uid, uid);
    }
    mkdirSync(lower, { mode: 0o700 });
    mkdirSync(root, { mode: 0o711 });
    await idmappedBind(imageRoot, lower, uid, tools.unshare);
    // Relative to the run directory: the kernel shows the options as given in the sandbox's
    // mountinfo, which must not name host paths. Comma-separated: the names are the worker's own.
    const rel = (path: string): string => relative(runDir, path);
    await run(tools.mount, ['-t', 'overlay', 'oz-image', '-o', `lowerdir=${rel(lower)},upperdir=${rel(upper)},workdir=${rel(work)},nosuid,nodev`, root], {
      cwd: runDir,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  } catch (error) {
    if (mountsUnder(runDir).length > 0) remove();
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`the run's image root could not be mounted: ${stderr || (error as Error).message}`);
  }
  return { root, remove };
}
