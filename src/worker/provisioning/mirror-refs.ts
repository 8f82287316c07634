import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const OBJECT_ID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
/** Plain branch names only: each component letters, digits, `.`, `_`, `-`, never starting with `.` or ending in `.lock`. */
const BRANCH = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The commit `refs/heads/<branch>` (or, without a branch, the one `HEAD`
 * names) points at in one of the worker's own bare mirrors, read from git's
 * files ref store as gitrepository-layout describes it: the loose ref file,
 * which wins, else its line in `packed-refs`. Null wherever it cannot be sure
 * (a name outside the plain form, a ref that is not an object id, another ref
 * format): the caller asks git then.
 *
 * By hand because it is on every warm start's path, where a git process
 * costs ~10 ms on a loaded host, and no library reads refs without bringing a
 * whole git implementation. A value read here is only ever compared with a
 * commit the run already has (a snapshot's base): a wrong null costs time, never correctness.
 */
export function mirrorBranchHead(gitDir: string, branch: string | undefined): string | null {
  let name = branch;
  if (name === undefined) {
    const head = read(join(gitDir, 'HEAD'))?.trim() ?? '';
    const target = /^ref: refs\/heads\/(.+)$/.exec(head)?.[1];
    if (target === undefined) return OBJECT_ID.test(head) ? head : null;
    name = target;
  }
  if (!BRANCH.test(name) || name.endsWith('.lock') || name.split('/').some((part) => part.endsWith('.lock'))) return null;
  const ref = `refs/heads/${name}`;
  const loose = read(join(gitDir, ref));
  if (loose !== null) return OBJECT_ID.test(loose.trim()) ? loose.trim() : null;
  for (const line of (read(join(gitDir, 'packed-refs')) ?? '').split('\n')) {
    const [id, packed] = line.split(' ');
    if (packed === ref) return id && OBJECT_ID.test(id) ? id : null;
  }
  return null;
}
