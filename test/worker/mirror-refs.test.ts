import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mirrorBranchHead } from '../../src/worker/provisioning/mirror-refs.js';
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
