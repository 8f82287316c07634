import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, cleanEnv, cleanUpAfterWorker, OZ_BIN, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { registerProcess } from '../support/process-registry.js';
import { until } from '../support/until.js';

/**
 * `oz worker` takes its token from OZ_WORKER_TOKEN or --token-file, so that it
 * is not in the process list for every local user to read (issue 16 item 9);
 * --token still works, with a warning.
 */

interface Worker {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

describe('the worker token stays out of the process list', () => {
  let server: OzServerHandle;
  let token = '';
  let dir = '';
  const workers: Worker[] = [];

  beforeAll(async () => {
    server = await startOzServer('sqlite', { args: ['--no-worker'] });
    const created = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: 'token-sources' } });
    expect(created.status).toBe(201);
    token = (created.body as { token: string }).token;
    dir = mkdtempSync(join(tmpdir(), 'oz-worker-token-'));
    chmodSync(dir, 0o711);
  });
  afterEach(async () => {
    // Drained by PID: SIGTERM, SIGKILL if it does not go.
    for (const w of workers.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill('SIGTERM');
        const timer = setTimeout(() => w.child.kill('SIGKILL'), 15_000);
        await w.exited;
        clearTimeout(timer);
      }
    }
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  /** `oz worker` as a process, ready once it prints "serving". */
  async function startWorker(args: string[], env: Record<string, string> = {}): Promise<Worker> {
    const cache = mkdtempSync(join(dir, 'cache-'));
    chmodSync(cache, 0o711);
    const child = spawn(process.execPath, [OZ_BIN, 'worker', '--server', server.url, ...args], {
      env: { ...cleanEnv(), OZ_LOG_LEVEL: 'warn', OZ_CACHE_DIR: cache, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    registerProcess(child.pid);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        if (child.pid !== undefined) cleanUpAfterWorker(child.pid);
        resolve(code);
      }),
    );
    const worker = { child, output: () => out, exited };
    workers.push(worker);
    await until(
      'the worker to start',
      () => {
        if (child.exitCode !== null) throw new Error(`oz worker exited with ${child.exitCode}:\n${out}`);
        return out.includes('serving');
      },
      20_000,
    );
    return worker;
  }

  /** A command run, executed by whichever worker claims it. */
  async function runsARun(): Promise<void> {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt: 'echo claimed', config: { harness: { type: 'command' } } } });
    expect(res.status).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const state = await until('the run to end', async () => {
      const run = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as { state: string };
      return ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'].includes(run.state) ? run.state : null;
    });
    expect(state).toBe('SUCCEEDED');
  }

  const cmdline = (pid: number | undefined): string => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');

  it('OZ_WORKER_TOKEN: not on the command line, and the worker claims and runs a run', async () => {
    const w = await startWorker([], { OZ_WORKER_TOKEN: token });
    expect(cmdline(w.child.pid)).toContain('worker --server');
    expect(cmdline(w.child.pid)).not.toContain(token);
    expect(w.output()).not.toContain('warning');
    await runsARun();
  });

  it('--token-file (0600, trailing newline): not on the command line, and the worker runs a run', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const w = await startWorker(['--token-file', file]);
    expect(cmdline(w.child.pid)).toContain(`--token-file ${file}`);
    expect(cmdline(w.child.pid)).not.toContain(token);
    expect(w.output()).not.toContain('warning');
    await runsARun();
  });

  it('--token still works, with a warning that it is in the process list', async () => {
    const w = await startWorker(['--token', token]);
    expect(w.output()).toContain('warning: --token puts the worker token in the process list');
    expect(w.output()).toContain('OZ_WORKER_TOKEN');
    await runsARun();
  });

  it('refuses clearly: no token, a missing, empty or world-readable file, both flags', async () => {
    const worker = (args: string[], env: Record<string, string> = {}) => runOz(['worker', '--server', server.url, ...args], { ...cleanEnv(), ...env });
    const none = await worker([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('a worker token is required: set OZ_WORKER_TOKEN, or pass --token-file FILE');
    const missing = await worker(['--token-file', join(dir, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`--token-file: cannot read ${join(dir, 'nope')}: ENOENT`);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n', { mode: 0o600 });
    expect((await worker(['--token-file', empty])).stderr).toContain(`--token-file: ${empty} is empty`);
    const open = join(dir, 'open');
    writeFileSync(open, `${token}\n`);
    chmodSync(open, 0o644);
    const readable = await worker(['--token-file', open]);
    expect(readable.code).toBe(2);
    expect(readable.stderr).toContain('is readable by other users (mode 644); chmod 600 it');
    expect(readable.stderr).not.toContain(token);
    const both = await worker(['--token', token, '--token-file', empty]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--token and --token-file: choose one');
    const blank = await worker([], { OZ_WORKER_TOKEN: '  ' });
    expect(blank.stderr).toContain('a worker token is required');
    const help = await runOz(['worker', '--help'], cleanEnv());
    expect(help.stdout).toContain('OZ_WORKER_TOKEN');
    expect(help.stdout).toContain('--token-file <file>');
    expect(help.stdout).toMatch(/--token <token>\s+deprecated/);
  });
});
