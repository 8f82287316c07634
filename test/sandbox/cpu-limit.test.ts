import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { cgroupFileOf, pidsWithArg } from '../support/host-processes.js';
import { INIT_SCRIPT, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';
import { until } from '../support/until.js';

const MIB = 1024 * 1024;

/** Throttled periods in a cpu.stat (v1 and v2 both name them nr_throttled). */
function throttled(stat: string | null): number {
  return Number(/^nr_throttled (\d+)$/m.exec(stat ?? '')?.[1] ?? 0);
}

describe.skipIf(!bwrapInstalled())('the CPU limit', () => {
  let root = '';
  let close: (() => void) | null = null;
  afterEach(() => {
    close?.();
    close = null;
    rmSync(root, { recursive: true, force: true });
  });

  it('holds a busy loop to its share of a core: the cgroup throttles it', async (ctx) => {
    root = mkdtempSync(join(tmpdir(), 'oz-cpu-'));
    chmodSync(root, 0o711);
    const backend = await BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
    close = () => backend.close();
    if (!backend.enforcement.includes(' and cpu')) {
      console.log(`skipped: no cpu controller to limit with here (${backend.enforcement})`);
      ctx.skip();
    }
    const sandbox = await backend.create({
      runId: 'cpu',
      network: 'off',
      limits: { pids: 64, memoryBytes: 256 * MIB, diskBytes: 32 * MIB, cpus: 0.2 },
      mounts: [],
      onLimit: () => {},
    });
    try {
      const marker = `oz-busy-${randomUUID()}`;
      const exec = sandbox.exec(['/bin/sh', '-c', 'while :; do :; done', marker], { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} }).catch(() => null);
      const [pid] = await until('the busy loop', () => {
        const found = pidsWithArg(marker);
        return found.length > 0 ? found : null;
      });
      // The quota: a fifth of each 100 ms period.
      const v1Quota = cgroupFileOf(pid as number, 'cpu', 'cpu.cfs_quota_us');
      if (v1Quota !== null) expect(v1Quota.trim()).toBe('20000');
      else expect(cgroupFileOf(pid as number, '', 'cpu.max')?.trim()).toBe('20000 100000');
      // Counted by the kernel, not timed by the test: periods in which the loop was stopped for its quota.
      await until('the busy loop to be throttled', () => throttled(cgroupFileOf(pid as number, 'cpu', 'cpu.stat') ?? cgroupFileOf(pid as number, '', 'cpu.stat')) > 0, 20_000);
      sandbox.signal('SIGKILL');
      await exec;
    } finally {
      await sandbox.destroy();
    }
  });
});
