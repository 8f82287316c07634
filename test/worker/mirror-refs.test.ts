import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitDirOf, mirrorBranchHead, readRefs, sameRefs } from '../../src/worker/provisioning/mirror-refs.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';

/** What git itself says the ref is. */
const revParse = (gitDir: string, ref: string): string => execFileSync('git', ['--git-dir', gitDir, 'rev-parse', '--verify', ref], { encoding: 'utf8' }).trim();

describe('a mirror branch read from its refs (what git would say, else null)', () => {
  let dir = '';
  let mirror = '';
  let work = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oz-mirror-refs-'));
    const origin = makeBareRepo(join(dir, 'repos'), 'app', { 'README.md': 'one\n' });
    work = join(dir, 'repos', 'app-work');
    git(work, 'checkout', '--quiet', '-b', 'feature/x');
    writeFileSync(join(work, 'README.md'), 'two\n');
    git(work, 'commit', '--quiet', '-am', 'two');
    git(work, 'push', '--quiet', origin, 'feature/x');
    mirror = join(dir, 'mirror.git');
    execFileSync('git', ['clone', '--quiet', '--mirror', origin, mirror]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads packed refs, loose refs (which win) and HEAD', () => {
    // A fresh mirror has its refs packed.
    expect(mirrorBranchHead(mirror, 'main')).toBe(revParse(mirror, 'refs/heads/main'));
    expect(mirrorBranchHead(mirror, 'feature/x')).toBe(revParse(mirror, 'refs/heads/feature/x'));
    expect(mirrorBranchHead(mirror, undefined)).toBe(revParse(mirror, 'HEAD'));
    // A fetch of a moved branch writes a loose ref over the packed one.
    git(work, 'checkout', '--quiet', 'main');
    writeFileSync(join(work, 'README.md'), 'three\n');
    git(work, 'commit', '--quiet', '-am', 'three');
    git(work, 'push', '--quiet', join(dir, 'repos', 'app.git'), 'main');
    execFileSync('git', ['--git-dir', mirror, 'fetch', '--quiet', '--prune', 'origin']);
    expect(mirrorBranchHead(mirror, 'main')).toBe(revParse(mirror, 'refs/heads/main'));
    expect(mirrorBranchHead(mirror, undefined)).toBe(revParse(mirror, 'refs/heads/main'));
  });

  it('is null for a branch that is not there, and for names it does not take (never a path outside refs/heads)', () => {
    expect(mirrorBranchHead(mirror, 'nope')).toBeNull();
    for (const name of ['../HEAD', '../../config', '/etc/passwd', 'a/../main', '.hidden', 'main.lock', 'a//b', 'feature', '']) {
      expect(mirrorBranchHead(mirror, name), name).toBeNull();
    }
    expect(mirrorBranchHead(join(dir, 'no-such.git'), 'main')).toBeNull();
  });
});

/** Every ref as git lists it, symbolic ones resolved. */
function forEachRef(gitDir: string): Map<string, string> {
  const out = execFileSync('git', ['--git-dir', gitDir, 'for-each-ref', '--format=%(refname) %(objectname)'], { encoding: 'utf8' }).trim();
  return new Map(out === '' ? [] : out.split('\n').map((line) => line.split(' ') as [string, string]));
}

describe('all refs of a repository, read from its files (what git lists, else null)', () => {
  let dir = '';
  let origin = '';
  let work = '';
  let mirror = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oz-mirror-refs-all-'));
    makeBareRepo(join(dir, 'repos'), 'app', { 'README.md': 'one\n' });
    origin = join(dir, 'repos', 'app.git');
    work = join(dir, 'repos', 'app-work');
    git(work, 'tag', '-a', '-m', 'annotated', 'v1');
    git(work, 'push', '--quiet', origin, 'v1');
    mirror = join(dir, 'mirror.git');
    execFileSync('git', ['clone', '--quiet', '--mirror', origin, mirror]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads packed and loose refs and resolves symbolic ones, as git lists them', () => {
    expect(readRefs(mirror)).toEqual(forEachRef(mirror));
    // A working tree's repository: loose refs, and refs/remotes/origin/HEAD as a symbolic ref.
    git(work, 'remote', 'add', 'origin', origin);
    git(work, 'fetch', '--quiet', 'origin');
    git(work, 'remote', 'set-head', 'origin', 'main');
    expect(forEachRef(join(work, '.git')).has('refs/remotes/origin/HEAD')).toBe(true);
    expect(gitDirOf(work)).toBe(join(work, '.git'));
    expect(readRefs(join(work, '.git'))).toEqual(forEachRef(join(work, '.git')));
    expect(gitDirOf(origin)).toBe(origin);
  });

  it('says the mirror matches its origin until the origin moves, and again after a fetch', () => {
    expect(sameRefs(origin, mirror)).toBe(true);
    writeFileSync(join(work, 'README.md'), 'two\n');
    git(work, 'commit', '--quiet', '-am', 'two');
    git(work, 'push', '--quiet', origin, 'HEAD:main');
    expect(sameRefs(origin, mirror)).toBe(false);
    execFileSync('git', ['--git-dir', mirror, 'fetch', '--quiet', '--prune', 'origin']);
    expect(sameRefs(origin, mirror)).toBe(true);
    // A ref the origin lost (a fetch would prune it).
    git(work, 'push', '--quiet', origin, 'HEAD:refs/heads/gone');
    execFileSync('git', ['--git-dir', mirror, 'fetch', '--quiet', '--prune', 'origin']);
    git(work, 'push', '--quiet', origin, ':refs/heads/gone');
    expect(sameRefs(origin, mirror)).toBe(false);
  });

  it('is null (so git is asked) for what it cannot be sure of', () => {
    const copy = (name: string): string => {
      const path = join(dir, name);
      cpSync(mirror, path, { recursive: true });
      return path;
    };
    const linked = copy('linked.git');
    symlinkSync(join(mirror, 'packed-refs'), join(linked, 'refs', 'heads', 'link'));
    expect(readRefs(linked)).toBeNull();
    const garbage = copy('garbage.git');
    writeFileSync(join(garbage, 'refs', 'heads', 'odd'), 'not an object id\n');
    expect(readRefs(garbage)).toBeNull();
    const dangling = copy('dangling.git');
    writeFileSync(join(dangling, 'refs', 'heads', 'sym'), 'ref: refs/heads/nowhere\n');
    expect(readRefs(dangling)).toBeNull();
    const locked = copy('locked.git');
    writeFileSync(join(locked, 'refs', 'heads', 'main.lock'), '');
    expect(readRefs(locked)).toBeNull();
    const reftable = copy('reftable.git');
    mkdirSync(join(reftable, 'reftable'));
    expect(readRefs(reftable)).toBeNull();
    const gitfile = join(dir, 'gitfile');
    mkdirSync(gitfile);
    writeFileSync(join(gitfile, '.git'), `gitdir: ${mirror}\n`);
    expect(gitDirOf(gitfile)).toBeNull();
    expect(sameRefs(gitfile, mirror)).toBe(false);
    expect(sameRefs(linked, mirror)).toBe(false);
  });
});
