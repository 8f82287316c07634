import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, realpathSync, renameSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Where a sandbox on an image finds the host's dynamic loader and the libraries the platform's Node.js needs. */
export const IMAGE_LOADER = '/oz/host/ld.so';
export const IMAGE_LIBS = '/oz/host/lib';

/** The platform's Node.js, made to run on any image root (Debian, Alpine with musl, distroless, busybox). */
export interface ImageNode {
  /** A copy of the worker's node whose loader and library path are `IMAGE_LOADER` and `IMAGE_LIBS`. */
  binary: string;
  /** The host's loader, bound at `IMAGE_LOADER`. */
  loader: string;
  /** The host libraries it loads, each bound at `IMAGE_LIBS/<name>`. */
  libs: readonly { name: string; path: string }[];
}

/**
 * The worker's own node for sandboxes whose root is an image, not the host:
 * an image may have no node, another libc (musl) or none at all, so the
 * platform brings its own loader and libraries. patchelf (Debian's) rewrites
 * a copy's interpreter and library path to fixed paths under `/oz/host`,
 * where the sandbox binds the host's files read-only; the copy is made once
 * per worker, in `stageDir`. The image's own programs keep their own libc:
 * nothing of the host is on their library path.
 */
export function prepareImageNode(stageDir: string, patchelf: string): ImageNode {
  const source = realpathSync(process.execPath);
  const interpreter = execFileSync(patchelf, ['--print-interpreter', source], { encoding: 'utf8' }).trim();
  const loader = realpathSync(interpreter);
  const listing = execFileSync(loader, ['--list', source], { encoding: 'utf8' });
  const libs: { name: string; path: string }[] = [];
  for (const line of listing.split('\n')) {
    const match = /^\s*(\S+) => (\/\S+)/.exec(line);
    if (match) libs.push({ name: match[1] as string, path: realpathSync(match[2] as string) });
  }
  const binary = join(stageDir, `node-image-${statSync(source).mtimeMs}`);
  if (!existsSync(binary)) {
    const temp = `${binary}.tmp`;
    copyFileSync(source, temp);
    // RPATH, not RUNPATH: it applies to the libraries' own dependencies too.
    execFileSync(patchelf, ['--set-interpreter', IMAGE_LOADER, '--force-rpath', '--set-rpath', IMAGE_LIBS, temp]);
    chmodSync(temp, 0o755);
    renameSync(temp, binary);
  }
  return { binary, loader, libs: libs.map((lib) => ({ name: basename(lib.name), path: lib.path })) };
}
