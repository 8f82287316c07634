import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DirectBackend } from '../../src/sandbox/direct/direct-backend.js';
import type { Sandbox } from '../../src/sandbox/sandbox-backend.js';
import { outsideChangesNote } from '../../src/worker/results/outside-changes.js';

const ENV = { PATH: '/usr/bin:/bin' };

/** The note on what a run left outside its repositories, listed in a (direct) sandbox. */
describe('changes outside the repositories', () => {
  let dir: string;
  let backend: DirectBackend;
  let sandbox: Sandbox;
  let workspace: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oz-outside-'));
    backend = new DirectBackend(dir);
  });
  afterAll(() => {
    backend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    sandbox = await backend.create({ runId: 'outside', network: 'off', limits: { pids: 64, memoryBytes: 1 << 28, diskBytes: 1 << 26 }, mounts: [], onLimit: () => {} });
    workspace = sandbox.workspacePath;
    // What every run's workspace holds: the repositories, the platform's .oz, HOME's dotfiles.
    for (const sub of ['app/src', 'lib', '.oz', '.claude', '.cache/npm']) mkdirSync(join(workspace, sub), { recursive: true });
    writeFileSync(join(workspace, 'app', 'src', 'main.ts'), 'inside\n');
    writeFileSync(join(workspace, '.oz', 'prompt.sh'), 'true\n');
    writeFileSync(join(workspace, '.claude.json'), '{}\n');
  });
  afterEach(async () => {
    await sandbox.destroy();
  });

  it('is null when everything is in a repository (or hidden: the platform’s .oz, the tools’ configuration)', async () => {
    expect(await outsideChangesNote(sandbox, ENV, ['app', 'lib'])).toBeNull();
  });

  it('names files, directories (with a slash) and symlinks outside every repository', async () => {
    writeFileSync(join(workspace, 'notes.txt'), 'lost\n');
    mkdirSync(join(workspace, 'out'));
    symlinkSync('/nowhere', join(workspace, 'dangling'));
    symlinkSync(join(workspace, 'app'), join(workspace, 'app-link'));
    expect(await outsideChangesNote(sandbox, ENV, ['app', 'lib'])).toBe('Changes outside the repositories were not published: app-link, dangling, notes.txt, out/.');
    // With one repository, the other directory is outside it too.
    expect(await outsideChangesNote(sandbox, ENV, ['app'])).toBe('Changes outside the repository were not published: app-link, dangling, lib/, notes.txt, out/.');
  });

  it('is bounded: twenty names, then how many more; names made printable and cut', async () => {
    for (let i = 10; i < 40; i++) writeFileSync(join(workspace, `file-${i}`), '');
    expect(await outsideChangesNote(sandbox, ENV, ['app', 'lib'])).toBe(
      `Changes outside the repositories were not published: ${Array.from({ length: 20 }, (_, i) => `file-${i + 10}`).join(', ')} and 10 more.`,
    );
    rmSync(workspace, { recursive: true, force: true });
    mkdirSync(join(workspace, 'app'), { recursive: true });
    writeFileSync(join(workspace, 'two\nlines\u001b[31m'), '');
    writeFileSync(join(workspace, 'x'.repeat(200)), '');
    expect(await outsideChangesNote(sandbox, ENV, ['app'])).toBe(`Changes outside the repository were not published: two?lines?[31m, ${'x'.repeat(80)}….`);
  });
});
