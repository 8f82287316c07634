import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentItem } from '../../src/api/environments.js';
import type { ListWorkersResponse } from '../../src/api/identity.js';
import type { ProblemBody } from '../../src/api/problem.js';
import type { RunAgentResponse, RunItem } from '../../src/api/runs.js';
import type { ScheduleItem } from '../../src/api/schedules.js';
import type { WorkerProfile } from '../../src/core/worker-protocol.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import { LifecycleSweeper } from '../../src/server/lifecycle-sweeper.js';
import { RunService } from '../../src/server/run-service.js';
import { ProtocolClient } from '../../src/worker/protocol-client.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';

/**
 * Worker pools through the API (docs/api.md "Worker pools"), on the real app
 * in-process: `config.worker_host` validated and stored, claims routed by the
 * worker's name and labels, the waiting message, the run's worker, and
 * `GET /admin/workers` for platform admins only.
 */
describe('worker pools through the API', () => {
  let server: InProcessApp;
  let admin: string;
  let member: string;
  let worker: ProtocolClient;
  let sweeper: LifecycleSweeper;

  const key = async (teamId: string, email: string, role: 'admin' | 'member'): Promise<string> => {
    const now = Date.now();
    const user = await server.store.createUser({ teamId, email, displayName: null, role }, now);
    const minted = mintCredential(API_KEY_PREFIX);
    await server.store.createApiKey({ teamId, userId: user.id, name: email, prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
    return minted.secret;
  };

  beforeAll(async () => {
    server = await startInProcessApp();
    // The first team is the platform team: its admins see the workers.
    const team = await server.store.createTeam({ name: 'platform', maxConcurrentRuns: 100 }, Date.now());
    admin = await key(team.id, 'admin@pools.test', 'admin');
    member = await key(team.id, 'member@pools.test', 'member');
    worker = new ProtocolClient(server.url, server.workerSecret);
    sweeper = new LifecycleSweeper(server.deps, new RunService(server.deps), 60_000);
  });
  afterAll(async () => {
    await server?.close();
  });

  const call = async <T = unknown>(method: string, path: string, body?: unknown, as = admin): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${as}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const createRun = async (config: Record<string, unknown>): Promise<RunAgentResponse> => {
    const res = await call<RunAgentResponse>('POST', '/api/v1/agent/runs', { prompt: 'echo hi', config: { harness: { type: 'command' }, ...config } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  const getRun = async (id: string): Promise<RunItem> => (await call<RunItem>('GET', `/api/v1/agent/runs/${id}`)).body;
  const profile = (name: string, labels: string[]): WorkerProfile => ({ name, labels, backend: 'direct', capacity: 3, version: 'test' });
  const claimAs = async (id: string, name: string, labels: string[]): Promise<string[]> =>
    (await worker.claim({ worker_id: id, max_runs: 10, wait_ms: 0, worker: profile(name, labels) })).runs.map((r) => r.run_id);

  it('refuses a config.worker_host that is no name or label, naming the field, in runs and schedules alike', async () => {
    for (const bad of ['GPU', 'has space', '-dash', 'x'.repeat(64), 42, '']) {
      const res = await call<ProblemBody>('POST', '/api/v1/agent/runs', { prompt: 'x', config: { worker_host: bad } });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'invalid_request', reason: 'config.worker_host' });
      expect(res.body.detail).toMatch(/^config\.worker_host: must be /);
    }
    const schedule = await call<ProblemBody>('POST', '/api/v1/agent/schedules', {
      name: 'nightly',
      cron_schedule: '0 3 * * *',
      prompt: 'x',
      agent_config: { worker_host: 'Big Box' },
    });
    expect(schedule.status).toBe(400);
    expect(schedule.body).toMatchObject({ error_code: 'invalid_request', reason: 'agent_config.worker_host' });
    // runner_id stays unavailable.
    const runner = await call<ProblemBody>('POST', '/api/v1/agent/runs', { prompt: 'x', config: { runner_id: 'r1' } });
    expect(runner.body).toMatchObject({ status: 403, error_code: 'feature_not_available', reason: 'config.runner_id' });
  });

  it('accepts a schedule routed to a label and echoes it', async () => {
    const res = await call<ScheduleItem>('POST', '/api/v1/agent/schedules', { name: 'gpu nightly', cron_schedule: '0 3 * * *', prompt: 'x', agent_config: { worker_host: 'gpu' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.agent_config.worker_host).toBe('gpu');
  });

  it('routes runs by name and label; a run nobody can take stays QUEUED and says why, until a worker that has it claims', async () => {
    // One worker present: cpu-1 (labels arm64).
    expect(await claimAs('pool-cpu', 'cpu-1', ['arm64'])).toEqual([]);

    const anyRun = await createRun({ worker_host: 'warp' });
    const armRun = await createRun({ worker_host: 'arm64' });
    const gpuRun = await createRun({ worker_host: 'gpu' });
    expect(anyRun).toMatchObject({ state: 'PENDING', at_capacity: false });
    expect(armRun).toMatchObject({ state: 'PENDING', at_capacity: false });
    // Not queued behind the team's limit: waiting for a worker, which the run says at once.
    expect(gpuRun).toMatchObject({ state: 'QUEUED', at_capacity: false });
    const waiting = await getRun(gpuRun.run_id);
    expect(waiting.status_message).toEqual({
      message: 'Waiting for a worker with name or label "gpu" (the one worker seen in the last 5 minutes does not have it).',
      reason: 'waiting_for_worker',
    });
    expect(waiting.agent_config.worker_host).toBe('gpu');
    expect((await getRun(anyRun.run_id)).agent_config.worker_host).toBeUndefined();

    // cpu-1 takes the unrouted and the arm64 runs, never the gpu one.
    expect((await claimAs('pool-cpu', 'cpu-1', ['arm64'])).sort()).toEqual([anyRun.run_id, armRun.run_id].sort());
    expect((await getRun(armRun.run_id)).worker).toEqual({ id: 'pool-cpu', name: 'cpu-1' });

    // A second worker without the label: the count in the message follows, on the sweep.
    expect(await claimAs('pool-other', 'other', [])).toEqual([]);
    await sweeper.tick();
    expect((await getRun(gpuRun.run_id)).status_message?.message).toBe('Waiting for a worker with name or label "gpu" (none of the 2 workers seen in the last 5 minutes has it).');
    // The notice says it once, for --follow.
    const events = await server.store.listRunEvents(gpuRun.run_id, 0, 100);
    expect(events.filter((e) => e.type === 'notice').map((e) => e.data.reason)).toEqual(['waiting_for_worker']);

    // A gpu worker polls: the sweep admits the run and drops the message; the gpu worker claims it.
    expect(await claimAs('pool-gpu', 'gpu-box', ['gpu'])).toEqual([]);
    await sweeper.tick();
    const admitted = await getRun(gpuRun.run_id);
    expect(admitted.state).toBe('PENDING');
    expect(admitted.status_message).toBeUndefined();
    expect(await claimAs('pool-cpu', 'cpu-1', ['arm64'])).toEqual([]);
    expect(await claimAs('pool-gpu', 'gpu-box', ['gpu'])).toEqual([gpuRun.run_id]);
    expect((await getRun(gpuRun.run_id)).worker).toEqual({ id: 'pool-gpu', name: 'gpu-box' });

    // A run routed by a worker's name.
    const byName = await createRun({ worker_host: 'gpu-box' });
    expect(byName.state).toBe('PENDING');
    expect(await claimAs('pool-cpu', 'cpu-1', ['arm64'])).toEqual([]);
    expect(await claimAs('pool-gpu', 'gpu-box', ['gpu'])).toEqual([byName.run_id]);
  });

  it("an environment's worker_host routes its runs that name none; a run's own wins, warp included", async () => {
    const bad = await call<ProblemBody>('POST', '/api/v1/agent/environments', { name: 'bad-host', worker_host: 'Not OK' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error_code: 'invalid_request', reason: 'worker_host' });
    const created = await call<EnvironmentItem>('POST', '/api/v1/agent/environments', { name: 'on-arm', worker_host: 'arm64' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.config.worker_host).toBe('arm64');
    const envId = created.body.uid;

    const inherited = await createRun({ environment_id: envId });
    const own = await createRun({ environment_id: envId, worker_host: 'gpu-box' });
    const anyRun = await createRun({ environment_id: envId, worker_host: 'warp' });
    expect((await getRun(inherited.run_id)).agent_config.worker_host).toBe('arm64');
    expect((await getRun(own.run_id)).agent_config.worker_host).toBe('gpu-box');
    expect((await getRun(anyRun.run_id)).agent_config.worker_host).toBeUndefined();
    expect((await claimAs('pool-other', 'other', [])).sort()).toEqual([anyRun.run_id]);
    expect(await claimAs('pool-cpu', 'cpu-1', ['arm64'])).toEqual([inherited.run_id]);
    expect(await claimAs('pool-gpu', 'gpu-box', ['gpu'])).toEqual([own.run_id]);

    // PATCH: null (or warp) removes it.
    const patched = await call<EnvironmentItem>('PATCH', `/api/v1/agent/environments/${envId}`, { worker_host: 'warp' });
    expect(patched.body.config.worker_host).toBeUndefined();
    const again = await call<EnvironmentItem>('PATCH', `/api/v1/agent/environments/${envId}`, { worker_host: 'gpu' });
    expect(again.body.config.worker_host).toBe('gpu');
    const removed = await call<EnvironmentItem>('PATCH', `/api/v1/agent/environments/${envId}`, { worker_host: null });
    expect(removed.status).toBe(200);
    expect(removed.body.config.worker_host).toBeUndefined();
  });

  it('lists the workers to platform admins only, with what they hold', async () => {
    const res = await call<ListWorkersResponse>('GET', '/api/v1/admin/workers');
    expect(res.status).toBe(200);
    const byId = new Map(res.body.workers.map((w) => [w.id, w]));
    expect(byId.get('pool-cpu')).toMatchObject({
      name: 'cpu-1',
      labels: ['arm64'],
      backend: 'direct',
      capacity: 3,
      running_runs: 3,
      version: 'test',
      token_name: 'embedded',
      online: true,
    });
    expect(byId.get('pool-gpu')).toMatchObject({ name: 'gpu-box', labels: ['gpu'], running_runs: 3 });
    expect(byId.get('pool-other')).toMatchObject({ running_runs: 1 });

    const refused = await call<ProblemBody>('GET', '/api/v1/admin/workers', undefined, member);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error_code: 'not_authorized' });
    // An admin of another team gets what such admins get for worker tokens.
    const other = await server.store.createTeam({ name: 'other-team', maxConcurrentRuns: 4 }, Date.now());
    const otherAdmin = await key(other.id, 'admin@other.test', 'admin');
    const tokens = await call<ProblemBody>('GET', '/api/v1/worker-tokens', undefined, otherAdmin);
    const workers = await call<ProblemBody>('GET', '/api/v1/admin/workers', undefined, otherAdmin);
    expect(workers.status).toBe(tokens.status);
    expect(workers.body.error_code).toBe(tokens.body.error_code);
  });

  it('refuses a claim whose worker profile has a bad name', async () => {
    const res = await fetch(`${server.url}/api/v1/worker/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.workerSecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ worker_id: 'bad', max_runs: 1, wait_ms: 0, worker: profile('Bad Name', []) }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ProblemBody).reason).toBe('worker.name');
  });
});
