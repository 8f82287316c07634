import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { imageBytes } from '../../src/sandbox/bwrap/run-disk.js';
import type { LimitKind } from '../../src/sandbox/sandbox-backend.js';
import { INIT_SCRIPT, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';
import { until } from '../support/until.js';

const MIB = 1024 * 1024;
const LIMITS = { pids: 64, memoryBytes: 256 * MIB, diskBytes: 32 * MIB };
const asRoot = process.getuid?.() === 0;

/** Mount points below `dir`, from this process's mountinfo. */
function mountsBelow(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

describe.skipIf(!bwrapInstalled())('the disk limit', () => {
  let root = '';
  let close: (() => void) | null = null;
  afterEach(() => {
    close?.();
    close = null;
    expect(mountsBelow(root)).toEqual([]);
    rmSync(root, { recursive: true, force: true });
  });

  it('is a file system of its own: files written, unlinked and held open cannot take more of the host, and filling it ends the run for its disk limit', async (ctx) => {
    if (!asRoot) {
      console.log('skipped: without root the disk limit is the periodic walk (a file system per run needs mount)');
      ctx.skip();
    }
    root = mkdtempSync(join(tmpdir(), 'oz-disk-'));
    chmodSync(root, 0o711);
    const backend = await BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
    close = () => backend.close();
    if (!backend.enforcement.includes('an ext4 file system per run')) {
      console.log(`skipped: no file system per run on this host (${backend.enforcement})`);
      ctx.skip();
    }
    const hits: LimitKind[] = [];
    const sandbox = await backend.create({ runId: 'held', network: 'off', limits: LIMITS, mounts: [], onLimit: (kind) => hits.push(kind) });
    const [runDir] = readdirSync(join(root, `w${process.pid}`)).filter((name) => name.startsWith('run-held-'));
    const mountPoint = join(root, `w${process.pid}`, runDir as string, 'disk');
    expect(mountsBelow(root)).toEqual([mountPoint]);
    // Seven files of 24 MiB (each under RLIMIT_FSIZE), each unlinked at once
    // and held open by the shell: 168 MiB that no walk of the tree can see.
    // After each, the space the held file takes, as the kernel counts it.
    let output = '';
    const script = [
      'for fd in 3 4 5 6 7 8 9; do',
      '  eval "exec $fd>/workspace/held-$fd"; rm /workspace/held-$fd',
      '  head -c 24M /dev/zero >&$fd 2>/dev/null',
      '  echo "held $(stat -L -c %b /proc/self/fd/$fd) $(stat -L -c %B /proc/self/fd/$fd)"',
      'done',
      'echo all-written',
      'sleep 30',
    ].join('\n');
    const exec = sandbox.exec(['/bin/sh', '-c', script], { env: { PATH: '/usr/bin:/bin' }, onOutput: (_s, chunk) => (output += chunk.toString()) }).catch((error: Error) => error);
    let peakUsed = 0;
    await until('the disk limit to be hit, or every file to be written', () => {
      try {
        const stat = statfsSync(mountPoint);
        peakUsed = Math.max(peakUsed, (stat.blocks - stat.bfree) * stat.bsize);
      } catch {
        // Unmounted once the sandbox is gone.
      }
      return hits.length > 0 || output.includes('all-written');
    });
    await exec;
    const held = [...output.matchAll(/^held (\d+) (\d+)$/gm)].reduce((sum, [, blocks, size]) => sum + Number(blocks) * Number(size), 0);
    expect(held, output).toBeGreaterThan(0);
    // Bounded by the run's file system, not by what was written.
    expect(held, output).toBeLessThanOrEqual(imageBytes(LIMITS.diskBytes));
    expect(peakUsed).toBeLessThanOrEqual(imageBytes(LIMITS.diskBytes));
    expect(hits).toEqual(['disk']);
    expect(await sandbox.limitHit()).toBe('disk');
    await sandbox.destroy();
    expect(mountsBelow(root)).toEqual([]);
    expect(existsSync(join(root, `w${process.pid}`, runDir as string))).toBe(false);
  });

  it('where no file system per run can be made, falls back to the walk and says so', async () => {
    root = mkdtempSync(join(tmpdir(), 'oz-disk-'));
    chmodSync(root, 0o711);
    // A PATH with everything but mkfs.ext4.
    const bin = join(root, 'bin');
    mkdirSync(bin);
    for (const tool of ['bwrap', 'prlimit', 'setpriv', 'env', 'umount', 'mount', 'unshare']) {
      const at = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((dir) => join(dir, tool)).find((path) => existsSync(path));
      if (at) symlinkSync(at, join(bin, tool));
    }
    const backend = await BwrapBackend.open({ root: join(root, 'sandboxes'), initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT, hostPath: bin });
    close = () => backend.close();
    expect(backend.enforcement).toMatch(/disk: measured every 2 s, not kernel-enforced \((the worker is not root|no file system per run: mkfs.ext4 or mount is not installed)/);
    const hits: LimitKind[] = [];
    const sandbox = await backend.create({ runId: 'walk', network: 'off', limits: LIMITS, mounts: [], onLimit: (kind) => hits.push(kind) });
    const result = await sandbox
      .exec(['/bin/sh', '-c', 'head -c 20M /dev/zero > a; head -c 20M /dev/zero > b; sleep 30'], { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} })
      .catch((error: Error) => error);
    expect(result).toBeInstanceOf(Error);
    expect(hits).toEqual(['disk']);
    await sandbox.destroy();
  });
});
