import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { DirectBackend } from '../../src/sandbox/direct/direct-backend.js';
import { FENCE_LAPSED } from '../../src/sandbox/fence.js';
import type { Sandbox, SandboxBackend } from '../../src/sandbox/sandbox-backend.js';
import { pidsWithArg, processState } from '../support/host-processes.js';
import { INIT_SCRIPT, markedSleeper, sandboxedMarker, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';
import { until } from '../support/until.js';

const HOLDER = join(import.meta.dirname, '..', 'support', 'sandbox-holder.ts');
const TSX = createRequire(import.meta.url).resolve('tsx');
const LIMITS = { pids: 64, memoryBytes: 256 * 1024 * 1024, diskBytes: 32 * 1024 * 1024 };
const ENV = { PATH: '/usr/bin:/bin' };

type Kind = 'bwrap' | 'direct';
const KINDS: Kind[] = bwrapInstalled() ? ['bwrap', 'direct'] : ['direct'];

async function openBackend(kind: Kind, root: string): Promise<SandboxBackend> {
  return kind === 'bwrap'
    ? BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT })
    : new DirectBackend(mkdtempSync(join(root, 'direct-')), { watchdogScript: WATCHDOG_SCRIPT });
}

/** Start the marked process in the sandbox (not awaited) and find its host pid. */
async function startMarked(sandbox: Sandbox): Promise<{ pid: number; exec: Promise<unknown>; marker: string }> {
  const marker = `oz-fence-${randomUUID()}`;
  const exec = sandbox.exec(markedSleeper(marker), { env: ENV, onOutput: () => {} }).then(
    (result) => ({ result }),
    (error: Error) => ({ error: error.message }),
  );
  const [pid] = await until(`the marked process ${marker}`, () => {
    const found = pidsWithArg(marker);
    return found.length > 0 ? found : null;
  });
  return { pid: pid as number, exec, marker };
}

describe.each(KINDS)('fencing on the %s backend: a sandbox stops when its lease lapses, whatever the worker does', (kind) => {
  let root = '';
  let backend: SandboxBackend | null = null;
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    backend?.close?.();
    backend = null;
    // The watchdog of a killed holder removes what it left; then the root goes.
    await until("the holders' leftovers to be removed", () => !existsSync(root) || readdirSync(root).every((name) => !/^w\d+$/.test(name) || name === `w${process.pid}`), 10_000);
    rmSync(root, { recursive: true, force: true });
  });
  const newRoot = (): string => {
    root = mkdtempSync(join(tmpdir(), 'oz-fence-'));
    chmodSync(root, 0o711);
    return root;
  };

  it('with no renewal, every process of the sandbox dies at the deadline, and the sandbox says why', async () => {
    backend = await openBackend(kind, newRoot());
    const sandbox = await backend.create({ runId: 'lapse', network: 'off', limits: LIMITS, mounts: [], onLimit: () => {}, fenceAfterMs: 1500 });
    try {
      const { pid, exec } = await startMarked(sandbox);
      await until('the fenced process to die', () => processState(pid) === null || processState(pid) === 'Z', 20_000);
      expect(((await exec) as { error: string }).error).toContain(FENCE_LAPSED);
      await expect(sandbox.exec(['/bin/true'], { env: ENV, onOutput: () => {} })).rejects.toThrow(FENCE_LAPSED);
      await expect(sandbox.restart()).rejects.toThrow(FENCE_LAPSED);
    } finally {
      await sandbox.destroy();
    }
  });

  it('renewals keep it alive past several deadlines; then it lapses', async () => {
    backend = await openBackend(kind, newRoot());
    const sandbox = await backend.create({ runId: 'renew', network: 'off', limits: LIMITS, mounts: [], onLimit: () => {}, fenceAfterMs: 1500 });
    try {
      const { pid, exec } = await startMarked(sandbox);
      let died = false;
      const renewals = setInterval(() => sandbox.renewFence(1500), 200);
      const watcher = setInterval(() => (died ||= processState(pid) === null || processState(pid) === 'Z'), 50);
      let rounds = 0;
      try {
        // Four deadlines' worth (6 s) of renewals, counted in the renewals' own ticks.
        await until('four deadlines to pass', () => ++rounds >= 60, 30_000, 100);
      } finally {
        clearInterval(renewals);
      }
      clearInterval(watcher);
      expect(died).toBe(false);
      const alive = await sandbox.exec(['/bin/sh', '-c', 'echo alive'], { env: ENV, onOutput: () => {} });
      expect(alive.exitCode).toBe(0);
      await until('the unrenewed process to die', () => processState(pid) === null || processState(pid) === 'Z', 20_000);
      expect(((await exec) as { error: string }).error).toContain(FENCE_LAPSED);
    } finally {
      await sandbox.destroy();
    }
  });

  it('a creator frozen with SIGSTOP cannot keep its sandbox alive: the watchdog kills it', async () => {
    newRoot();
    const tag = `oz-frozen-${randomUUID()}`;
    const marker = sandboxedMarker(tag);
    // A process group of its own, as a worker started from a shell or a service manager has.
    const child = spawn(process.execPath, ['--import', TSX, HOLDER, 'fenced', kind, root, '2000', tag], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.push(child);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    await new Promise<void>((resolve, reject) => {
      lines.once('line', () => resolve());
      child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    const [pid] = await until("the frozen holder's marked process", () => {
      const found = pidsWithArg(marker);
      return found.length > 0 ? found : null;
    });
    // Stop the creator (the worker's stand-in) and its process group.
    process.kill(-(child.pid as number), 'SIGSTOP');
    await until('the holder to be stopped', () => processState(child.pid as number) === 'T');
    await until('the sandbox of a frozen creator to die', () => processState(pid as number) === null || processState(pid as number) === 'Z', 20_000);
    // The creator never ran meanwhile: the watchdog did it.
    expect(processState(child.pid as number)).toBe('T');
    process.kill(-(child.pid as number), 'SIGCONT');
  });
});
