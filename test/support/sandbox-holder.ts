/**
 * A worker-like process for the sandbox crash and fencing tests, run with
 * tsx. It opens a backend on the root given and then:
 *
 *   fenced <bwrap|docker|direct> <root> <fenceAfterMs> <tag>
 *     creates one sandbox with that fence and a process whose argv holds
 *     sandboxedMarker(<tag>), prints {"ev":"ready"} and waits (the test
 *     stops it with SIGSTOP: nobody renews the fence);
 *   churn <root> <tag>
 *     creates sandboxes, each with such a process, for ever, printing
 *     "creating <n>" before each (the test SIGKILLs it mid-start).
 *
 * The marker is not the tag itself, which is in this process's own argv.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { BwrapBackend } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { DirectBackend } from '../../src/sandbox/direct/direct-backend.js';
import { DockerBackend } from '../../src/sandbox/docker/docker-backend.js';
import type { SandboxBackend } from '../../src/sandbox/sandbox-backend.js';

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'sandbox');
export const INIT_SCRIPT = join(DIST, '..', 'in-sandbox', 'sandbox-init.js');
export const WATCHDOG_SCRIPT = join(DIST, 'watchdog.js');
const LIMITS = { pids: 64, memoryBytes: 256 * 1024 * 1024, diskBytes: 32 * 1024 * 1024 };

/** What the processes a holder starts in its sandboxes carry in their argv. */
export function sandboxedMarker(tag: string): string {
  return `${tag}-sandboxed`;
}

/** A command that runs until killed, findable on the host by `marker` in its argv. */
export function markedSleeper(marker: string): string[] {
  return ['/bin/sh', '-c', 'sleep 3600; :', marker];
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  const warn = (message: string): void => void process.stderr.write(`warning: ${message}\n`);
  if (mode === 'fenced') {
    const [kind, root, fenceAfterMs, tag] = args as [string, string, string, string];
    const marker = sandboxedMarker(tag);
    const backend: SandboxBackend =
      kind === 'bwrap'
        ? await BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT, onWarning: warn })
        : kind === 'docker'
          ? await DockerBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT, onWarning: warn })
          : new DirectBackend(mkdtempSync(join(root, 'direct-')), { watchdogScript: WATCHDOG_SCRIPT, onWarning: warn });
    const sandbox = await backend.create({ runId: 'fenced', network: 'off', limits: LIMITS, mounts: [], onLimit: () => {}, fenceAfterMs: Number(fenceAfterMs) });
    void sandbox.exec(markedSleeper(marker), { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} }).catch(() => {});
    process.stdout.write(`${JSON.stringify({ ev: 'ready' })}\n`);
    setInterval(() => {}, 60_000);
  } else if (mode === 'churn') {
    const [root, tag] = args as [string, string];
    const marker = sandboxedMarker(tag);
    const backend = await BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT, onWarning: warn });
    for (let n = 0; ; n++) {
      process.stdout.write(`creating ${n}\n`);
      const sandbox = await backend.create({ runId: `churn${n}`, network: 'off', limits: LIMITS, mounts: [], onLimit: () => {} });
      void sandbox.exec(markedSleeper(marker), { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} }).catch(() => {});
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) await main();
