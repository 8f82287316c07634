import { createHash } from 'node:crypto';
import { lstatSync, readlinkSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { drain } from './engine-stream.js';

/** The host's top-level system paths: each a symlink (merged /usr) recreated in the image, or a directory bound read-only. */
export const SYSTEM_ROOTS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/** The image's own directories: mount points, and the read-only root's only content. */
const DIRECTORIES = ['dev', 'etc', 'oz', 'proc', 'sys', 'tmp', 'usr', 'workspace'];
export const BASE_REPOSITORY = 'oz-sandbox-base';

type Entry = { name: string; type: 'directory' } | { name: string; type: 'symlink'; target: string } | { name: string; type: 'file'; content: string };

/** The base image's entries for this host: what `/` holds before the binds. */
function entries(): Entry[] {
  const list: Entry[] = DIRECTORIES.map((name) => ({ name, type: 'directory' }));
  for (const name of SYSTEM_ROOTS) {
    try {
      const stat = lstatSync(`/${name}`);
      if (stat.isSymbolicLink()) list.push({ name, type: 'symlink', target: readlinkSync(`/${name}`) });
      else if (stat.isDirectory()) list.push({ name, type: 'directory' });
    } catch {
      // Not on this host.
    }
  }
  // Mount points of the per-run files (bound read-only over them).
  for (const name of ['passwd', 'group']) list.push({ name: `etc/${name}`, type: 'file', content: '' });
  return list.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * The image a sandbox without an environment image starts from, and the
 * platform's steps of one with an image run on (docs/sandboxes.md "The docker
 * backend"): empty directories and this host's merged-/usr links, a few
 * hundred bytes, made by the worker with the engine's import (no registry
 * needed), tagged by a hash of its entries so a host whose layout changes
 * gets a new one. The host's `/usr` and system directories are bound
 * read-only over it per container, as the bwrap backend binds them: runs see
 * the same system whichever of the two runs them.
 */
/** The base image's id (made the first time). */
export async function ensureBaseImage(docker: Docker): Promise<string> {
  const list = entries();
  const tag = createHash('sha256').update(JSON.stringify(list)).digest('hex').slice(0, 16);
  const name = `${BASE_REPOSITORY}:${tag}`;
  // By id: Podman names an imported image localhost/<name>, and resolves a short name elsewhere on create.
  try {
    return (await docker.getImage(name).inspect()).Id;
  } catch {
    // Not made yet.
  }
  const tar = pack();
  for (const entry of list) {
    const header = { name: entry.name, mtime: new Date(0), uid: 0, gid: 0 };
    if (entry.type === 'directory') tar.entry({ ...header, type: 'directory', mode: entry.name === 'tmp' ? 0o1777 : 0o755 });
    else if (entry.type === 'symlink') tar.entry({ ...header, type: 'symlink', linkname: entry.target, mode: 0o777 });
    else tar.entry({ ...header, type: 'file', mode: 0o644 }, entry.content);
  }
  tar.finalize();
  const body = new PassThrough();
  tar.pipe(body);
  const id = await drain(await docker.importImage(body));
  if (!id?.startsWith('sha256:')) throw new Error(`the engine's import named no image (${id ?? 'nothing'})`);
  // Tagged afterwards: Podman's import drops the tag it is given.
  await docker.getImage(id).tag({ repo: BASE_REPOSITORY, tag });
  return id;
}
