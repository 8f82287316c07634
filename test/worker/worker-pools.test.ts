import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListWorkersResponse } from '../../src/api/identity.js';
import type { RunItem } from '../../src/api/runs.js';
import { api, runOz, startOzServer, startOzWorker, type OzServerHandle, type OzWorkerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';

/**
 * Worker pools end to end (docs/api.md "Worker pools"): `oz server
 * --no-worker`, two `oz worker` processes with their own names and labels
 * (the direct backend, for speed), and the CLI. Each run goes to the worker
 * that has its name or label, a run nobody can take stays QUEUED saying why,
 * and `oz worker list` shows both workers.
 */
describe('worker pools with real workers', () => {
  let server: OzServerHandle;
  let token = '';
  const workers: OzWorkerHandle[] = [];

  const oz = (...args: string[]) => runOz(args, server.cliEnv);
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await oz(...args, '--output-format', 'json');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const start = async (args: string[]): Promise<OzWorkerHandle> => {
    const worker = await startOzWorker(server, token, {}, ['--backend', 'direct', ...args]);
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    server = await startOzServer('sqlite', { args: ['--no-worker'], env: { OZ_SWEEP_INTERVAL_MS: '300' } });
    const created = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: 'pools' } });
    expect(created.status).toBe(201);
    token = (created.body as { token: string }).token;
  });
  afterAll(async () => {
    // Drained by PID: SIGTERM, then SIGKILL if one does not go.
    for (const worker of workers.splice(0)) {
      worker.signal('SIGTERM');
      const timer = setTimeout(() => void worker.kill(), 15_000);
      await worker.exited;
      clearTimeout(timer);
    }
    expect(await server?.stop()).toBe(0);
  });

  it('refuses a bad name or label naming the flag, and still requires --server to run a worker', async () => {
    const name = await oz('worker', '--server', server.url, '--token', token, '--name', 'Box One');
    expect(name.code).toBe(1);
    expect(name.stderr).toMatch(/^oz: --name \/ OZ_WORKER_NAME: must be 1 to 63 characters: lowercase letters/);
    const label = await oz('worker', '--server', server.url, '--token', token, '--label', 'gpu', '--label', 'ARM');
    expect(label.code).toBe(1);
    expect(label.stderr).toMatch(/^oz: --label \/ OZ_WORKER_LABELS: must be 1 to 63 characters/);
    const reserved = await runOz(['worker', '--server', server.url, '--token', token], { ...server.cliEnv, OZ_WORKER_LABELS: 'gpu,warp' });
    expect(reserved.stderr).toContain('--label / OZ_WORKER_LABELS: "warp" is reserved');
    const noServer = await oz('worker');
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toContain("required option '--server <url>' not specified");
  });

  it('sends each run to the worker that has its name or label; a run nobody can take stays QUEUED and says why', async () => {
    const gpu = await start(['--name', 'box-a', '--label', 'gpu', '--label', 'arm64']);
    const cpu = await start(['--name', 'box-b', '--label', 'cpu', '--concurrency', '3']);
    expect(gpu.output()).toContain('(name box-a, labels gpu,arm64, concurrency 2, backend direct)');
    expect(cpu.output()).toContain('(name box-b, labels cpu, concurrency 3, backend direct)');

    // Both are listed once their first claim poll reached the server.
    const listed = await until('both workers in oz worker list', async () => {
      const list = await json<ListWorkersResponse>('worker', 'list');
      return list.workers.length === 2 ? list : null;
    });
    const byName = new Map(listed.workers.map((w) => [w.name, w]));
    expect(byName.get('box-a')).toMatchObject({ labels: ['gpu', 'arm64'], backend: 'direct', capacity: 2, running_runs: 0, token_name: 'pools', online: true, version: '0.1.0' });
    expect(byName.get('box-b')).toMatchObject({ labels: ['cpu'], backend: 'direct', capacity: 3, online: true });
    const table = await oz('worker', 'list');
    expect(table.code, table.stderr).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^NAME\s+LABELS\s+BACKEND\s+CAPACITY\s+RUNNING\s+LAST SEEN\s+STATUS\s+ID$/);
    expect(rows.map((row) => row.split(/\s+/).slice(0, 3))).toEqual(
      expect.arrayContaining([
        ['box-a', 'gpu,arm64', 'direct'],
        ['box-b', 'cpu', 'direct'],
      ]),
    );

    // Routed by label, and by a worker's name: each ends on its worker, which `oz run get` shows.
    for (const [host, expected] of [
      ['gpu', 'box-a'],
      ['arm64', 'box-a'],
      ['cpu', 'box-b'],
      ['box-b', 'box-b'],
    ] as const) {
      const result = await oz('agent', 'run-cloud', '--harness', 'command', '-p', `echo ran on ${host}`, '--host', host, '--wait', '--output-format', 'text');
      expect(result.code, result.stderr).toBe(0);
      const [runId, state] = result.stdout.trim().split('\n').at(-1)?.split('\t') ?? [];
      expect(state).toBe('SUCCEEDED');
      const run = await json<RunItem>('run', 'get', runId ?? '');
      expect(run.agent_config.worker_host).toBe(host);
      expect(run.worker?.name, host).toBe(expected);
      expect(run.worker?.id).toBe(byName.get(expected)?.id);
      const pretty = await oz('run', 'get', runId ?? '');
      expect(pretty.stdout).toMatch(new RegExp(`^Worker:\\s+${expected} \\(`, 'm'));
      expect(pretty.stdout).toMatch(new RegExp(`^Host:\\s+${host}$`, 'm'));
    }

    // An environment's --host routes its runs that name none.
    const env = await json<{ uid: string }>('environment', 'create', '-n', 'on-arm', '--host', 'arm64');
    expect((await oz('environment', 'get', env.uid)).stdout).toMatch(/^Host:\s+arm64$/m);
    const onEnv = await oz('agent', 'run-cloud', '--harness', 'command', '-p', 'echo env', '-e', env.uid, '--wait', '--output-format', 'text');
    expect(onEnv.code, onEnv.stderr).toBe(0);
    const envRun = await json<RunItem>('run', 'get', onEnv.stdout.trim().split('\n').at(-1)?.split('\t')[0] ?? '');
    expect(envRun).toMatchObject({ state: 'SUCCEEDED', agent_config: { worker_host: 'arm64' }, worker: { name: 'box-a' } });
    const removed = await oz('environment', 'update', env.uid, '--remove-host');
    expect(removed.code, removed.stderr).toBe(0);
    expect((await oz('environment', 'get', env.uid)).stdout).toMatch(/^Host:\s+\(any worker\)$/m);

    // No worker has tpu: the run is queued (not behind the team's limit) and says what it waits for.
    const spawned = await oz('agent', 'run-cloud', '--harness', 'command', '-p', 'echo never', '--host', 'tpu');
    expect(spawned.code, spawned.stderr).toBe(0);
    const lines = spawned.stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(/^Queued: no worker seen lately has the name or label "tpu"/);
    const tpuRun = /run ID: (\S+)$/.exec(lines[0] ?? '')?.[1] ?? '';
    // A few sweeps later it still waits, and still says why.
    await new Promise((r) => setTimeout(r, 1500));
    const waiting = await json<RunItem>('run', 'get', tpuRun);
    expect(waiting.state).toBe('QUEUED');
    expect(waiting.worker).toBeUndefined();
    expect(waiting.status_message).toEqual({
      message: 'Waiting for a worker with name or label "tpu" (none of the 2 workers seen in the last 5 minutes has it).',
      reason: 'waiting_for_worker',
    });
    const pretty = await oz('run', 'get', tpuRun);
    expect(pretty.stdout).toMatch(/^Status:\s+Waiting for a worker with name or label "tpu"/m);

    // A third worker with the label comes: the run is admitted, claimed and done there.
    await start(['--name', 'box-c', '--label', 'tpu']);
    const done = await until('the tpu run to end', async () => {
      const run = await json<RunItem>('run', 'get', tpuRun);
      return run.state === 'SUCCEEDED' ? run : null;
    });
    expect(done.worker?.name).toBe('box-c');
    expect(done.status_message?.reason).not.toBe('waiting_for_worker');
  });

  it('oz worker list is for admins of the platform team', async () => {
    expect((await oz('admin', 'user', 'create', 'member@pools.test', '--team', 'default')).code).toBe(0);
    const key = (await oz('admin', 'user', 'key', 'member@pools.test', '--name', 'member', '--output-format', 'text')).stdout.trim();
    const refused = await runOz(['worker', 'list'], { ...server.cliEnv, WARP_API_KEY: key });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('[not_authorized]');
  });
});

describe("the embedded worker's name and labels", () => {
  let server: OzServerHandle;
  beforeAll(async () => {
    server = await startOzServer('sqlite', { args: ['--backend', 'direct'], env: { OZ_WORKER_NAME: 'embedded-box', OZ_WORKER_LABELS: 'local,fast' } });
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it('come from OZ_WORKER_NAME and OZ_WORKER_LABELS, route runs, and show in oz worker list', async () => {
    const result = await runOz(['agent', 'run-cloud', '--harness', 'command', '-p', 'echo local', '--host', 'fast', '--wait', '--output-format', 'text'], server.cliEnv);
    expect(result.code, result.stderr).toBe(0);
    const runId = result.stdout.trim().split('\n').at(-1)?.split('\t')[0] ?? '';
    const run = (await api(server, 'GET', `/api/v1/agent/runs/${runId}`, { key: server.adminKey })).body as RunItem;
    expect(run).toMatchObject({ state: 'SUCCEEDED', worker: { name: 'embedded-box' } });
    expect(run.worker?.id).toMatch(/^embedded:/);
    const list = await runOz(['worker', 'list', '--output-format', 'json'], server.cliEnv);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as ListWorkersResponse).workers).toEqual([
      expect.objectContaining({ name: 'embedded-box', labels: ['local', 'fast'], backend: 'direct', token_name: 'embedded', online: true }),
    ]);
  });
});
