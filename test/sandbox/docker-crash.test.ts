import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBackend } from '../../src/sandbox/docker/docker-backend.js';
import { childrenOf, pidsWithArg } from '../support/host-processes.js';
import { INIT_SCRIPT, sandboxedMarker, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';
import { until } from '../support/until.js';

const HOLDER = join(import.meta.dirname, '..', 'support', 'sandbox-holder.ts');
const TSX = createRequire(import.meta.url).resolve('tsx');

function docker(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', timeout: 30_000 }).trim();
}

function engineReachable(): boolean {
  try {
    docker(['version', '--format', '{{.Server.Version}}']);
    return true;
  } catch {
    return false;
  }
}

/** The sandbox containers a worker process made (running or not), by the label it puts on them. */
function containersOf(workerPid: number): string[] {
  return docker(['ps', '-a', '--filter', `label=dev.oz.worker-pid=${workerPid}`, '--format', '{{.Names}}'])
    .split('\n')
    .filter(Boolean);
}

describe.skipIf(!engineReachable())('a docker worker killed with -9', () => {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'oz-docker-crash-'));
    chmodSync(root, 0o711);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('leaves containers (its watchdog killed too) that the next worker start removes, with its run directories', async () => {
    const tag = `oz-docker-crash-${randomUUID()}`;
    const child = spawn(process.execPath, ['--import', TSX, HOLDER, 'fenced', 'docker', root, '600000', tag], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const pid = child.pid as number;
    let watchdogs: number[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          if (line.includes('"ready"')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
      });
      await until('the sandboxed process', () => pidsWithArg(sandboxedMarker(tag)).length > 0);
      watchdogs = childrenOf(pid, 'watchdog.js');
      expect(watchdogs).toHaveLength(1);
    } finally {
      child.kill('SIGKILL');
      for (const watchdog of watchdogs) process.kill(watchdog, 'SIGKILL');
      await exited;
    }
    // Nothing of the dead worker cleaned up after it: its containers are still there, and still running.
    expect(containersOf(pid).length).toBeGreaterThan(0);
    expect(pidsWithArg(sandboxedMarker(tag)).length).toBeGreaterThan(0);
    expect(existsSync(join(root, `w${pid}`))).toBe(true);

    const next = await DockerBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
    try {
      expect(containersOf(pid)).toEqual([]);
      await until('the sandboxed process to be gone', () => pidsWithArg(sandboxedMarker(tag)).length === 0, 10_000);
      expect(readdirSync(root)).toEqual([`w${process.pid}`]);
    } finally {
      next.close();
    }
  });
});
