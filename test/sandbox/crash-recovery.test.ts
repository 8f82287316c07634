import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { cgroupsNamed, childrenOf, mountsBelow, pidsOf, pidsWithArg } from '../support/host-processes.js';
import { INIT_SCRIPT, sandboxedMarker, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';
import { until } from '../support/until.js';

const HOLDER = join(import.meta.dirname, '..', 'support', 'sandbox-holder.ts');
const TSX = createRequire(import.meta.url).resolve('tsx');
const KILLS = 10;

/**
 * Start a worker-like process that creates sandboxes without end, and
 * SIGKILL it while it is starting one (its `at`-th), its watchdog too if asked.
 */
async function killMidStart(root: string, tag: string, at: number, withWatchdog: boolean): Promise<number> {
  const child = spawn(process.execPath, ['--import', TSX, HOLDER, 'churn', root, tag], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let watchdog: number[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        if (line === 'creating 0') watchdog = childrenOf(child.pid as number, 'watchdog.js');
        if (line === `creating ${at}`) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    // Somewhere in the sandbox's start: its cgroup made, its launch chain on its way.
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 40)));
  } finally {
    child.kill('SIGKILL');
    if (withWatchdog) for (const pid of watchdog) process.kill(pid, 'SIGKILL');
    await exited;
  }
  if (withWatchdog) expect(watchdog).toHaveLength(1);
  return child.pid as number;
}

/** Everything a dead worker `pid` may have left: processes, cgroups, mounts, its directory. */
function leftovers(root: string, pid: number, tag: string): string[] {
  const dir = join(root, `w${pid}`);
  return [
    ...pidsOf({ cgroup: `/oz-w${pid}-`, holding: `${dir}/` }).map((p) => `process ${p}`),
    ...pidsWithArg(sandboxedMarker(tag)).map((p) => `sandboxed process ${p}`),
    ...cgroupsNamed(`oz-w${pid}-`).map((cgroup) => `cgroup ${cgroup}`),
    ...mountsBelow(dir).map((point) => `mount ${point}`),
    ...(existsSync(dir) ? [`directory ${dir}`] : []),
  ];
}

describe.skipIf(!bwrapInstalled())('a worker killed while its sandboxes start', () => {
  let root = '';
  afterEach(() => {
    expect(mountsBelow(root)).toEqual([]);
    rmSync(root, { recursive: true, force: true });
  });
  const newRoot = (): string => {
    root = mkdtempSync(join(tmpdir(), 'oz-crash-'));
    chmodSync(root, 0o711);
    return root;
  };

  it(`leaves nothing behind: its watchdog kills and removes what it started (${KILLS} kills)`, async () => {
    newRoot();
    const tag = `oz-churn-${randomUUID()}`;
    const dead: number[] = [];
    for (let i = 0; i < KILLS; i++) dead.push(await killMidStart(root, tag, 1 + (i % 3), false));
    for (const pid of dead) await until(`nothing left of worker ${pid}`, () => leftovers(root, pid, tag).length === 0, 15_000);
    expect(dead.flatMap((pid) => leftovers(root, pid, tag))).toEqual([]);
  });

  it(`with its watchdog killed too, the next backend on the root kills and removes what it started (${KILLS} kills)`, async () => {
    newRoot();
    const tag = `oz-churn-${randomUUID()}`;
    const dead: number[] = [];
    for (let i = 0; i < KILLS; i++) dead.push(await killMidStart(root, tag, 1 + (i % 3), true));
    const backend = await BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
    try {
      expect(dead.flatMap((pid) => leftovers(root, pid, tag))).toEqual([]);
      expect(readdirSync(root)).toEqual([`w${process.pid}`]);
    } finally {
      backend.close();
    }
  });
});
