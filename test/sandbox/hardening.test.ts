import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import type { Sandbox } from '../../src/sandbox/sandbox-backend.js';
import { INIT_SCRIPT, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';

const PROBES = join(import.meta.dirname, '..', 'support', 'sandbox-probes');
const MIB = 1024 * 1024;

describe.skipIf(!bwrapInstalled())('what a sandbox can reach of the kernel and learn of the host', () => {
  let root = '';
  let backend: BwrapBackend;
  let sandbox: Sandbox;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'oz-hardening-'));
    chmodSync(root, 0o711);
    backend = await BwrapBackend.open({ root, initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
    sandbox = await backend.create({ runId: 'hardening', network: 'off', limits: { pids: 64, memoryBytes: 256 * MIB, diskBytes: 32 * MIB }, mounts: [], onLimit: () => {} });
  });
  afterAll(async () => {
    await sandbox?.destroy();
    backend?.close();
    rmSync(root, { recursive: true, force: true });
  });
  const run = async (script: string): Promise<string> => {
    let output = '';
    const result = await sandbox.exec(['/bin/sh', '-c', script], { env: { PATH: '/usr/bin:/bin' }, onOutput: (_s, chunk) => (output += chunk.toString()) });
    expect(result.exitCode, output).toBe(0);
    return output;
  };

  it('the seccomp filter refuses io_uring and AF_VSOCK sockets (and still allows a unix socket)', async () => {
    const probe = readFileSync(join(PROBES, 'syscalls.py'), 'utf8');
    const output = await run(`python3 - <<'PY'\n${probe}PY\n`);
    expect(output).toContain('io_uring_setup=Operation not permitted\n');
    expect(output).toContain('vsock=Operation not permitted\n');
    expect(output).toContain('unix_socket=ok\n');
    expect(output).toContain('getppid=ok\n');
  });

  it("the namespace's pid 1 holds no environment of the worker's, and mountinfo names no host path of the sandbox root", async () => {
    const output = await run('echo "environ=[$(tr "\\0" " " < /proc/1/environ)]"; cat /proc/self/mountinfo');
    expect(output).toContain('environ=[]');
    expect(output).not.toContain('oz-w');
    expect(output).not.toContain(process.cwd());
    // /workspace and /tmp are the run's own file system's directories, not binds of host paths.
    if (backend.enforcement.includes('an ext4 file system per run')) expect(output).not.toContain(root);
    else console.log(`not checked: mountinfo shows the host path of /workspace without a file system per run (${backend.enforcement})`);
  });
});
