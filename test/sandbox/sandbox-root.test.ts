import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled, SandboxUnavailableError } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { cleanEnv, OZ_BIN } from '../support/oz-server-process.js';

const INIT = join(import.meta.dirname, '..', '..', 'dist', 'in-sandbox', 'sandbox-init.js');
const WATCHDOG = join(import.meta.dirname, '..', '..', 'dist', 'sandbox', 'watchdog.js');

describe.skipIf(!bwrapInstalled())('the bwrap sandbox root', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = async (root: string): Promise<string> => {
    const error = await BwrapBackend.open({ root, initScript: INIT, watchdogScript: WATCHDOG }).then(
      (backend) => {
        backend.close();
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    return (error as Error).message;
  };

  it('refuses a symlink, a group- or world-writable directory, and says how to fix it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-root-'));
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o711 });
    symlinkSync(real, join(dir, 'link'));
    expect(await refusal(join(dir, 'link'))).toMatch(/is not a directory; set OZ_SANDBOX_ROOT/);
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(await refusal(open)).toMatch(/writable by group or others/);
  });

  it('refuses a root below a directory the sandbox users cannot search, naming it and the fix', async (ctx) => {
    if (process.getuid?.() !== 0) {
      console.log("skipped: without root the sandbox is the worker's own uid and searches what it does");
      ctx.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'oz-root-')); // 0700
    const message = await refusal(join(dir, 'deeper', 'sandboxes'));
    expect(message).toContain(
      `the sandbox root ${join(dir, 'deeper', 'sandboxes')} is below ${dir} (mode 0700), which the sandbox users cannot search: run chmod o+x ${dir}, or set OZ_SANDBOX_ROOT`,
    );
    chmodSync(dir, 0o711);
    const backend = await BwrapBackend.open({ root: join(dir, 'deeper', 'sandboxes'), initScript: INIT, watchdogScript: WATCHDOG });
    backend.close();
  });

  it('binds a tool that lives below a directory the sandbox cannot search (a checkout in a 0700 dir)', async (ctx) => {
    if (process.getuid?.() !== 0) {
      console.log("skipped: without root the sandbox is the worker's own uid and reaches what it does");
      ctx.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'oz-root-'));
    chmodSync(dir, 0o711);
    const hidden = mkdtempSync(join(tmpdir(), 'oz-hidden-')); // 0700
    try {
      writeFileSync(join(hidden, 'hello'), '#!/bin/sh\necho "hello from a hidden tool"\n', { mode: 0o700 });
      const backend = await BwrapBackend.open({ root: join(dir, 'sandboxes'), initScript: INIT, watchdogScript: WATCHDOG });
      try {
        const sandbox = await backend.create({
          runId: 'tool',
          network: 'off',
          limits: { pids: 64, memoryBytes: 1 << 28, diskBytes: 1 << 24 },
          mounts: [],
          tools: [{ name: 'hello', path: join(hidden, 'hello') }],
          onLimit: () => {},
        });
        let out = '';
        const result = await sandbox.exec([sandbox.toolPaths.hello as string], { env: { PATH: '/usr/bin:/bin' }, onOutput: (_s, c) => (out += c.toString()) });
        await sandbox.destroy();
        expect(result.exitCode, out).toBe(0);
        expect(out).toBe('hello from a hidden tool\n');
      } finally {
        backend.close();
      }
    } finally {
      rmSync(hidden, { recursive: true, force: true });
    }
  });

  it('uses a root given as an own 0711 directory and cleans up after itself', async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-root-'));
    const backend = await BwrapBackend.open({ root: dir, initScript: INIT, watchdogScript: WATCHDOG });
    try {
      const sandbox = await backend.create({
        runId: 'root-test',
        network: 'off',
        limits: { pids: 64, memoryBytes: 256 * 1024 * 1024, diskBytes: 16 * 1024 * 1024 },
        mounts: [],
        onLimit: () => {},
      });
      const result = await sandbox.exec(['/bin/sh', '-c', 'touch /workspace/x && echo ok'], { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} });
      expect(result.exitCode).toBe(0);
      await sandbox.destroy();
    } finally {
      backend.close();
    }
    expect(existsSync(join(dir, `w${process.pid}`))).toBe(false);
  });
});

describe.skipIf(!bwrapInstalled() || process.getuid?.() !== 0)('the cache directory of a root bwrap worker', () => {
  it('refuses to start below a directory the sandbox users cannot search, naming it, the setting and the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oz-cache-')); // 0700, as mktemp -d makes it
    try {
      const result = spawnSync(process.execPath, [OZ_BIN, 'server', '--port', '0'], {
        env: { ...cleanEnv(), XDG_CONFIG_HOME: join(dir, 'config'), OZ_DATA_DIR: join(dir, 'data'), OZ_CACHE_DIR: join(dir, 'cache') },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(result.status, result.stderr).not.toBe(0);
      expect(result.stderr).toContain(`the cache directory (repository mirrors, run sockets) ${join(dir, 'cache', 'support')} is below ${dir} (mode 0700)`);
      expect(result.stderr).toContain(`run chmod o+x ${dir}, or set OZ_CACHE_DIR`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
