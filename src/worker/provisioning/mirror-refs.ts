import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
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

/** More loose refs than this, or a bigger packed-refs, and {@link readRefs} leaves the answer to git. */
const MAX_LOOSE_REFS = 4096;
const MAX_PACKED_BYTES = 16 * 1024 * 1024;

/** What is at `path`, not following a symbolic link (nothing here reads a FIFO, a device or a link's target). */
function kind(path: string): 'missing' | 'file' | 'directory' | 'other' {
  try {
    const stat = lstatSync(path);
    return stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : 'other';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'other';
  }
}

/** A regular file's text ('' when there is none), null for anything else or one too big. */
function regularFile(path: string): string | null {
  const found = kind(path);
  if (found === 'missing') return '';
  if (found !== 'file' || lstatSync(path).size > MAX_PACKED_BYTES) return null;
  return read(path);
}

/**
 * Every ref under `refs/` of a repository in git's files ref store (a bare
 * repository, or the `.git` directory of a working tree): loose refs, which
 * win, over `packed-refs`; a symbolic ref resolved to the ref it names in the
 * same repository. Null wherever it cannot be sure what git would say: a
 * symbolic link, a gitfile or a linked worktree, the reftable format, a
 * file that is not an object id, a symbolic ref to a ref that is not there,
 * or very many loose refs.
 *
 * By hand for the same reason as {@link mirrorBranchHead}. What it is used
 * for ({@link sameRefs}) only ever skips a fetch that would change nothing.
 */
export function readRefs(gitDir: string): Map<string, string> | null {
  if (['commondir', 'reftable'].some((name) => existsSync(join(gitDir, name)))) return null;
  const refs = new Map<string, string>();
  const symbolic = new Map<string, string>();
  const packed = regularFile(join(gitDir, 'packed-refs'));
  if (packed === null) return null;
  for (const line of packed.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('^')) continue;
    const [id, name, extra] = line.split(' ');
    if (!id || !OBJECT_ID.test(id) || !name?.startsWith('refs/') || extra !== undefined) return null;
    refs.set(name, id);
  }
  let loose = 0;
  const walk = (dir: string, prefix: string): boolean => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const entry of entries) {
      const name = `${prefix}${entry.name}`;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!walk(path, `${name}/`)) return false;
        continue;
      }
      if (!entry.isFile() || ++loose > MAX_LOOSE_REFS) return false;
      if (entry.name.endsWith('.lock')) return false; // git is writing it now
      const content = (regularFile(path) ?? '').trim();
      const target = /^ref: (refs\/\S+)$/.exec(content)?.[1];
      if (target !== undefined) symbolic.set(name, target);
      else if (OBJECT_ID.test(content)) refs.set(name, content);
      else return false;
    }
    return true;
  };
  const refsDir = kind(join(gitDir, 'refs'));
  if (refsDir === 'other' || (refsDir === 'directory' && !walk(join(gitDir, 'refs'), 'refs/'))) return null;
  for (const [name, target] of symbolic) {
    const id = symbolic.has(target) ? undefined : refs.get(target);
    if (id === undefined) return null; // a chain of them, or one to nowhere
    refs.set(name, id);
  }
  return refs;
}

/** Where a local repository's refs are: its `.git` directory, or the repository itself when bare; null for a gitfile. */
export function gitDirOf(repository: string): string | null {
  const dotGit = join(repository, '.git');
  try {
    const stat = lstatSync(dotGit);
    return stat.isDirectory() ? dotGit : null;
  } catch {
    return repository;
  }
}

/**
 * Whether a mirror already holds exactly the refs of its local origin (then
 * `git fetch --prune` would change nothing); false when either cannot be read
 * for sure.
 */
export function sameRefs(originRepository: string, mirror: string): boolean {
  const originDir = gitDirOf(originRepository);
  const theirs = originDir === null ? null : readRefs(originDir);
  const ours = theirs === null ? null : readRefs(mirror);
  if (theirs === null || ours === null || theirs.size !== ours.size) return false;
  for (const [name, id] of theirs) if (ours.get(name) !== id) return false;
  return true;
}
