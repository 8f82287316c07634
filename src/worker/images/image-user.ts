import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** The in-sandbox uid the harness runs as when the image names no user, or root: never root. */
export const DEFAULT_AGENT_ID = 1000;
const MAX_PASSWD_BYTES = 1024 * 1024;

/**
 * A file of an unpacked image root, read without following a symlink
 * anywhere on its path: the image is the registry's content, and
 * `/etc/passwd -> /etc/shadow` must not read the host's. Null if absent.
 */
export function readImageFile(rootDir: string, parts: readonly string[]): string | null {
  let path = rootDir;
  for (const part of parts.slice(0, -1)) {
    path = join(path, part);
    try {
      if (!lstatSync(path).isDirectory()) return null;
    } catch {
      return null;
    }
  }
  let fd: number;
  try {
    fd = openSync(join(path, parts.at(-1) as string), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return null;
    const buffer = Buffer.alloc(Math.min(stat.size, MAX_PASSWD_BYTES));
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** An image's `/etc/passwd` or `/etc/group`, or null. */
export type EtcFiles = (file: 'passwd' | 'group') => string | null;

/** `name`'s id in an image's /etc/passwd or /etc/group (field 3), or null. */
function lookup(etc: EtcFiles, file: 'passwd' | 'group', name: string): { id: number; gid: number } | null {
  const text = etc(file) ?? '';
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3) {
      const id = Number(fields[2]);
      const gid = Number(fields[3]);
      if (Number.isInteger(id) && id >= 0) return { id, gid: Number.isInteger(gid) && gid >= 0 ? gid : id };
    }
  }
  return null;
}

function parseId(etc: EtcFiles, part: string, file: 'passwd' | 'group'): { id: number; gid: number } {
  if (/^\d+$/.test(part)) {
    const id = Number(part);
    if (id > 65_535) throw new Error(`image user id ${part} is above 65535`);
    return { id, gid: id };
  }
  const found = lookup(etc, file, part);
  if (!found) throw new Error(`image ${file === 'passwd' ? 'user' : 'group'} "${part}" is not in the image's /etc/${file}`);
  return found;
}

/**
 * Whom the harness runs as in a sandbox on the image: its config's `User`
 * (`name`, `uid`, `name:group`, `uid:gid`), resolved in the image's own
 * /etc/passwd and /etc/group. Root or no user means uid and gid 1000: the
 * agent never runs as root, even inside. Throws naming what is wrong.
 */
export function imageAgentUser(etc: EtcFiles, user: string | null): { uid: number; gid: number } {
  if (!user) return { uid: DEFAULT_AGENT_ID, gid: DEFAULT_AGENT_ID };
  const [userPart = '', groupPart] = user.split(':', 2);
  const found = parseId(etc, userPart, 'passwd');
  const gid = groupPart === undefined ? found.gid : parseId(etc, groupPart, 'group').id;
  if (found.id === 0) return { uid: DEFAULT_AGENT_ID, gid: DEFAULT_AGENT_ID };
  return { uid: found.id, gid: gid === 0 ? DEFAULT_AGENT_ID : gid };
}

/** The image's `Env` entries (`NAME=value`) as variables; later entries win, as in Docker. */
export function imageEnv(entries: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}
