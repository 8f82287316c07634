import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every server and worker process a test starts is written down (its PID),
 * and the suite's global teardown kills those still alive: a suite that fails
 * or times out before its afterAll stopped them, or a test worker that was
 * terminated, leaves none behind, and the run fails. By PID, and only if it
 * is still one of ours.
 */
const VARIABLE = 'OZ_TEST_PROCESS_REGISTRY';

export function registerProcess(pid: number | undefined): void {
  const file = process.env[VARIABLE];
  if (file && pid !== undefined) appendFileSync(file, `${pid}\n`);
}

/** vitest globalSetup: make the registry; the returned teardown kills what is left. */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'oz-test-pids-'));
  const file = join(dir, 'pids');
  process.env[VARIABLE] = file;
  return () => {
    let pids: number[] = [];
    try {
      pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      // No process was started.
    }
    const killed: number[] = [];
    for (const pid of pids) {
      try {
        // Still ours (not a recycled PID): an oz process.
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('bin/oz.js')) {
          process.kill(pid, 'SIGKILL');
          killed.push(pid);
        }
      } catch {
        // Gone already.
      }
    }
    rmSync(dir, { recursive: true, force: true });
    // Each file's leak check (test/support/leak-check.ts) should have caught
    // these; a test worker that died before its hooks ran did not: say so.
    if (killed.length > 0) throw new Error(`the suite left oz process(es) ${killed.join(', ')} running (killed now)`);
  };
}
