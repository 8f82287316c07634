import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrompt } from '../../src/agent/builtin/system-prompt.js';
import { CommandHarness } from '../../src/agent/command/command-harness.js';
import type { HarnessInput } from '../../src/agent/harness.js';
import { workingDir, workingDirPath } from '../../src/agent/working-dir.js';
import { DirectBackend } from '../../src/sandbox/direct/direct-backend.js';
import type { Sandbox } from '../../src/sandbox/sandbox-backend.js';
import { Redactor } from '../../src/secrets/redactor.js';
import { checkoutDirs, setUpWorkspace } from '../../src/worker/provisioning/workspace-setup.js';
import { makeBareRepo } from '../support/git-fixtures.js';

const ENV = { PATH: '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1' };

describe('the working directory rule', () => {
  it('is the repository with exactly one, else the workspace', () => {
    expect(workingDir([])).toBe('.');
    expect(workingDir(['app'])).toBe('app');
    expect(workingDir(['app', 'lib'])).toBe('.');
    expect(workingDirPath('/workspace', [])).toBe('/workspace');
    expect(workingDirPath('/workspace', ['app'])).toBe('/workspace/app');
    expect(workingDirPath('/workspace', ['app', 'lib'])).toBe('/workspace');
  });

  it("the built-in agent's system prompt names its working directory and every repository's", () => {
    expect(systemPrompt({ workspace: '/workspace', repoDirs: [] })).toContain('Your working directory is /workspace. No repository was checked out for this run.');
    const one = systemPrompt({ workspace: '/workspace', repoDirs: ['app'] });
    expect(one).toContain("Your working directory is /workspace/app, the checkout of this run's repository");
    expect(one).toContain('Only changes inside it are published.');
    const two = systemPrompt({ workspace: '/workspace', repoDirs: ['app', 'lib'] });
    expect(two).toContain("Your working directory is /workspace, which holds this run's repositories");
    expect(two).toContain('/workspace/app, /workspace/lib.');
  });
});

/** Setup commands and the `command` harness, on the direct backend: `pwd` says where each started. */
describe('where setup and the command harness start', () => {
  let dir: string;
  let appUrl: string;
  let libUrl: string;
  let backend: DirectBackend;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oz-working-dir-'));
    chmodSync(dir, 0o755);
    appUrl = makeBareRepo(dir, 'app', { 'README.md': '# app\n' });
    libUrl = makeBareRepo(dir, 'lib', { 'README.md': '# lib\n' });
    backend = new DirectBackend(dir);
  });
  afterAll(() => {
    backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A sandbox with the repositories set up and `setup` run; returns it and what setup printed. */
  const provisioned = async (urls: string[], setup: string[]): Promise<{ sandbox: Sandbox; output: string }> => {
    const mounts = urls.map((url) => url.slice('file://'.length));
    const sandbox = await backend.create({
      runId: `run-${urls.length}`,
      network: 'off',
      limits: { pids: 64, memoryBytes: 1 << 28, diskBytes: 1 << 26 },
      mounts,
      onLimit: () => {},
    });
    let output = '';
    await setUpWorkspace({
      sandbox,
      repos: urls.map((url) => ({ url })),
      setupCommands: setup,
      env: { ...ENV, HOME: sandbox.workspacePath },
      emit: () => {},
      output: (_stream, chunk) => (output += chunk.toString()),
      stopped: () => false,
      redactor: new Redactor([]),
    });
    return { sandbox, output };
  };
  const command = async (sandbox: Sandbox, repoDirs: string[], script: string): Promise<{ ok: boolean; output: string }> => {
    let output = '';
    const input: HarnessInput = {
      runId: 'run',
      prompt: script,
      harness: { type: 'command' },
      sandbox,
      env: { ...ENV, HOME: sandbox.workspacePath },
      sink: { output: (_stream, chunk) => (output += chunk.toString()), event: () => {} },
      modelId: null,
      budgets: { maxSteps: 1, maxTokens: 1, maxTimeMs: 60_000 },
      repoDirs,
      signal: new AbortController().signal,
      redact: (text) => text,
      modelProxy: null,
    };
    const result = await new CommandHarness().run(input);
    return { ok: result.ok, output };
  };

  it('with one repository: in its directory, so a relative path lands in it', async () => {
    const { sandbox, output } = await provisioned([appUrl], ['pwd', 'echo built > built.txt']);
    try {
      expect(output).toBe(`${sandbox.workspacePath}/app\n`);
      const repoDirs = checkoutDirs([{ url: appUrl }]);
      const run = await command(sandbox, repoDirs, 'pwd; cat built.txt; echo new > new.txt; git status --porcelain');
      expect(run).toEqual({ ok: true, output: `${sandbox.workspacePath}/app\nbuilt\n?? built.txt\n?? new.txt\n` });
    } finally {
      await sandbox.destroy();
    }
  });

  it('with two repositories: in the workspace, which holds both', async () => {
    const { sandbox, output } = await provisioned([appUrl, libUrl], ['pwd']);
    try {
      expect(output).toBe(`${sandbox.workspacePath}\n`);
      const run = await command(sandbox, checkoutDirs([{ url: appUrl }, { url: libUrl }]), 'pwd; ls');
      expect(run).toEqual({ ok: true, output: `${sandbox.workspacePath}\napp\nlib\n` });
    } finally {
      await sandbox.destroy();
    }
  });

  it('with none: in the workspace', async () => {
    const { sandbox, output } = await provisioned([], ['pwd']);
    try {
      expect(output).toBe(`${sandbox.workspacePath}\n`);
      expect(await command(sandbox, [], 'pwd')).toEqual({ ok: true, output: `${sandbox.workspacePath}\n` });
    } finally {
      await sandbox.destroy();
    }
  });
});
