import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import type { Sandbox, SandboxBackend, SandboxSpec } from '../../src/sandbox/sandbox-backend.js';
import { spareKey, SpareSandboxes, type SpareShape } from '../../src/worker/spare-sandboxes.js';
import { INIT_SCRIPT, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';
import { until } from '../support/until.js';

const LIMITS = { pids: 64, memoryBytes: 256 * 1024 * 1024, diskBytes: 32 * 1024 * 1024 };
const SHAPE: SpareShape = { network: 'off', limits: LIMITS, mounts: [] };
const ENV = { PATH: '/usr/bin:/bin' };
const logger = pino({ level: 'silent' });

async function shell(sandbox: Sandbox, script: string): Promise<{ code: number | null; out: string }> {
  let out = '';
  const result = await sandbox.exec(['/bin/sh', '-c', script], { env: ENV, onOutput: (_stream, chunk) => (out += chunk.toString()) });
  return { code: result.exitCode, out };
}

/** The backend, counting the sandboxes it made and the ones still alive. */
function counting(backend: SandboxBackend): { backend: SandboxBackend; created: SandboxSpec[]; alive: () => number } {
  const created: SandboxSpec[] = [];
  let alive = 0;
  return {
    created,
    alive: () => alive,
    backend: {
      name: backend.name,
      isolates: backend.isolates,
      runsImages: backend.runsImages,
      create: async (spec) => {
        created.push(spec);
        const sandbox = await backend.create(spec);
        alive += 1;
        const destroy = sandbox.destroy.bind(sandbox);
        let gone = false;
        sandbox.destroy = () => {
          if (!gone) alive -= 1;
          gone = true;
          return destroy();
        };
        return sandbox;
      },
    },
  };
}

describe('spare sandboxes: the shape key', () => {
  it('differs in every part a sandbox starts with, and by team', () => {
    const base = spareKey('team-a', SHAPE);
    const variants: SpareShape[] = [
      { ...SHAPE, network: 'on' },
      { ...SHAPE, internalRanges: ['10.0.0.0/8'] },
      { ...SHAPE, limits: { ...LIMITS, pids: 65 } },
      { ...SHAPE, limits: { ...LIMITS, cpus: 1 } },
      { ...SHAPE, mounts: ['/cache/mirrors/x.git'] },
      { ...SHAPE, tools: [{ name: 'claude', path: '/opt/claude' }] },
      { ...SHAPE, image: { rootDir: '/images/a', agentUid: 1000, agentGid: 1000 } },
      { ...SHAPE, restore: { workspace: '/snapshots/k/workspace', layer: null } },
      { ...SHAPE, phase: 'setup' },
    ];
    const keys = new Set([base, spareKey('team-b', SHAPE), ...variants.map((shape) => spareKey('team-a', shape))]);
    expect(keys.size).toBe(variants.length + 2);
    expect(spareKey('team-a', { ...SHAPE, mounts: [] })).toBe(base);
  });
});

describe.skipIf(!bwrapInstalled())('spare sandboxes on bwrap', () => {
  let dir = '';
  let support = '';
  let bwrap: BwrapBackend;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-spares-'));
    chmodSync(dir, 0o755);
    support = join(dir, 'support');
    mkdirSync(support, { mode: 0o711 });
    bwrap = await BwrapBackend.open({ root: join(dir, 'sandboxes'), initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
  });
  afterAll(() => {
    bwrap?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hands a started sandbox to one taker, with its support directory bound in, and makes no other', async () => {
    const { backend, created, alive } = counting(bwrap);
    const spares = new SpareSandboxes(backend, support, logger, { max: 2, idleMs: 60_000 });
    let released = 0;
    spares.prepare('team-a', SHAPE, () => released++);
    spares.prepare('team-a', SHAPE, () => released++); // one of a shape: the second is let go at once
    expect(released).toBe(1);
    const key = spareKey('team-a', SHAPE);
    expect(await spares.take(spareKey('team-b', SHAPE))).toBeNull();
    const taken = await spares.take(key); // waits for the one still starting
    expect(taken).not.toBeNull();
    expect(await spares.take(key)).toBeNull(); // used once
    expect(created).toHaveLength(1);
    expect(created[0]?.fenceAfterMs).toBeUndefined();
    const sandbox = taken?.sandbox as Sandbox;
    expect((await shell(sandbox, 'id -u; ls -A /workspace; ls -A /tmp')).out).toBe('1000\n');
    // The taker's support directory is the one bound into the sandbox: what the run's sockets make there later, it sees.
    const supportDir = taken?.supportDir as string;
    expect(sandbox.supportDirPath).not.toBeNull();
    writeFileSync(join(supportDir, 'sock-later'), 'made after the start\n', { mode: 0o644 });
    expect((await shell(sandbox, `cat ${sandbox.supportDirPath}/sock-later`)).out).toBe('made after the start\n');
    taken?.release();
    expect(released).toBe(2);
    await sandbox.destroy();
    rmSync(supportDir, { recursive: true }); // the run's sockets remove it
    await spares.close();
    expect(alive()).toBe(0);
  });

  it('tears down what nobody takes: on a drain, past its idle time, and the oldest when another shape needs its place', async () => {
    const { backend, created, alive } = counting(bwrap);
    const spares = new SpareSandboxes(backend, support, logger, { max: 1, idleMs: 60_000 });
    const released: string[] = [];
    spares.prepare('team-a', SHAPE, () => released.push('a'));
    await until('the first spare to start', () => (alive() === 1 ? true : null));
    const other = { ...SHAPE, limits: { ...LIMITS, pids: 80 } };
    spares.prepare('team-a', other, () => released.push('b'));
    await until('the first spare to go', () => (released.includes('a') ? true : null));
    expect(await spares.take(spareKey('team-a', SHAPE))).toBeNull();
    await spares.close();
    expect(released.sort()).toEqual(['a', 'b']);
    expect(created).toHaveLength(2);
    expect(alive()).toBe(0);
    expect(readdirSync(support).filter((name) => name.startsWith('spare-'))).toEqual([]);
    // Closed: none are made any more, and what the caller held is let go at once.
    spares.prepare('team-a', SHAPE, () => released.push('c'));
    expect(released).toContain('c');
    expect(created).toHaveLength(2);

    const timed = new SpareSandboxes(backend, support, logger, { max: 1, idleMs: 300 });
    let gone = false;
    timed.prepare('team-a', SHAPE, () => (gone = true));
    await until('the idle spare to go', () => (gone && alive() === 0 ? true : null));
    expect(await timed.take(spareKey('team-a', SHAPE))).toBeNull();
    await timed.close();
  });

  it('makes none with max 0, and a taker of one that failed to start gets null', async () => {
    const { backend, created } = counting(bwrap);
    const none = new SpareSandboxes(backend, support, logger, { max: 0, idleMs: 60_000 });
    let released = false;
    none.prepare('team-a', SHAPE, () => (released = true));
    expect(released).toBe(true);
    expect(created).toHaveLength(0);
    // A mount that does not exist: the sandbox cannot start.
    const broken = new SpareSandboxes(bwrap, support, logger, { max: 1, idleMs: 60_000 });
    const shape = { ...SHAPE, mounts: [join(dir, 'no-such-mirror')] };
    let brokenReleased = false;
    broken.prepare('team-a', shape, () => (brokenReleased = true));
    expect(await broken.take(spareKey('team-a', shape))).toBeNull();
    expect(brokenReleased).toBe(true);
    expect(readdirSync(support).filter((name) => name.startsWith('spare-'))).toEqual([]);
    await broken.close();
  });
});
