import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, startOzServer, type Backend } from '../support/oz-server-process.js';
import type { ConversationResponse as Conversation } from '../../src/api/conversation.js';
import type { EnvironmentItem as CloudEnvironment, ListEnvironmentsResponse } from '../../src/api/environments.js';
import type { CreatedApiKey, CreatedWorkerToken, ListApiKeysResponse, ListWorkerTokensResponse, MeResponse as Me, TeamItem, UserItem } from '../../src/api/identity.js';
import type { ListModelsResponse } from '../../src/api/models.js';
import type { ProblemBody as Problem } from '../../src/api/problem.js';
import type { RunAgentResponse as CreatedRun, ListRunsResponse as RunList, RunItem } from '../../src/api/runs.js';
import { openSse, type SseFrame, type SseStream } from './sse-client.js';

/** The model the server is started with, so `/agent/models` has something to list. */
const DEFAULT_MODEL = 'anthropic/claude-sonnet-4-5';
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

type ApiResult = Awaited<ReturnType<typeof api>>;

/** Reads a JSON body as the shape the test expects (the assertions check it). */
function bodyOf<T>(res: ApiResult): T {
  return res.body as T;
}

/**
 * Asserts a problem+json reply (docs/design.md "Errors") and returns it. With
 * `field`, the reply must name that field both in `reason` and in `detail`.
 */
function expectProblem(res: ApiResult, status: number, errorCode: string, field?: string): Problem {
  const seen = JSON.stringify(res.body);
  expect(res.status, seen).toBe(status);
  expect(res.headers.get('content-type') ?? '', seen).toMatch(/^application\/problem\+json/);
  const problem = bodyOf<Problem>(res);
  expect(problem).toMatchObject({ status, error_code: errorCode, retryable: expect.any(Boolean) });
  expect(problem.type.endsWith(`/${errorCode}`), problem.type).toBe(true);
  expect(problem.title).toEqual(expect.any(String));
  expect(problem.detail.length).toBeGreaterThan(0);
  expect(problem.error).toContain(problem.detail);
  if (field !== undefined) {
    expect(problem.reason, seen).toBe(field);
    expect(problem.detail, seen).toContain(field);
  }
  return problem;
}

/** A server the contract can talk to: its URL, an admin key, and how to stop it. */
export interface ContractServer {
  url: string;
  adminKey: string;
  stop(): Promise<unknown>;
}

/** How the contract gets its server: by default a real `oz server` process (no worker). */
export type StartContractServer = (options: { defaultModel: string }) => Promise<ContractServer>;

/**
 * The Oz HTTP API, over HTTP, against a server on one backend: a real `oz
 * server` process, or (the fast tier, test/fast) the same app in-process.
 */
export function describeApiContract(backend: Backend, pgUrl?: string, start?: StartContractServer, label: string = backend): void {
  describe(`the HTTP API on ${label}`, () => {
    let server: ContractServer;
    let admin: string;
    const streams: SseStream[] = [];
    let seq = 0;
    const unique = (what: string): string => `${what}-${++seq}-${Date.now().toString(36)}`;

    beforeAll(async () => {
      server = start
        ? await start({ defaultModel: DEFAULT_MODEL })
        : await startOzServer(backend, { ...(pgUrl ? { pgUrl } : {}), env: { OZ_DEFAULT_MODEL: DEFAULT_MODEL }, args: ['--no-worker'] });
      admin = server.adminKey;
    });
    afterEach(() => {
      for (const stream of streams.splice(0)) stream.abort();
    });
    afterAll(async () => {
      await server?.stop();
    });

    const call = (method: string, path: string, options: Parameters<typeof api>[3] = {}) => api(server, method, path, { key: admin, ...options });

    async function createRun(body: Record<string, unknown>, options: { key?: string; headers?: Record<string, string> } = {}): Promise<CreatedRun> {
      const res = await call('POST', '/api/v1/agent/runs', { body, ...options });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return bodyOf<CreatedRun>(res);
    }

    async function getRun(id: string, key = admin): Promise<RunItem> {
      const res = await call('GET', `/api/v1/agent/runs/${id}`, { key });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return bodyOf<RunItem>(res);
    }

    async function listRuns(query = '', key = admin): Promise<RunList> {
      const res = await call('GET', `/api/v1/agent/runs${query}`, { key });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return bodyOf<RunList>(res);
    }

    async function allRunIds(key = admin): Promise<string[]> {
      return (await listRuns('?limit=500', key)).runs.map((r) => r.run_id);
    }

    async function cancel(id: string, key = admin): Promise<void> {
      const res = await call('POST', `/api/v1/agent/runs/${id}/cancel`, { key });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }

    /** A fresh team with one member and that member's API key (through the admin API). */
    async function newTeam(maxConcurrentRuns?: number): Promise<{ teamId: string; userId: string; key: string; name: string }> {
      const name = unique('team');
      const team = await call('POST', '/api/v1/admin/teams', { body: { name, ...(maxConcurrentRuns ? { max_concurrent_runs: maxConcurrentRuns } : {}) } });
      expect(team.status, JSON.stringify(team.body)).toBe(201);
      const teamId = bodyOf<TeamItem>(team).uid;
      const user = await call('POST', '/api/v1/admin/users', { body: { email: `${unique('user')}@example.test`, team: name } });
      expect(user.status, JSON.stringify(user.body)).toBe(201);
      const userId = bodyOf<UserItem>(user).uid;
      const key = await call('POST', `/api/v1/admin/users/${userId}/api-keys`, { body: { name: 'test' } });
      expect(key.status, JSON.stringify(key.body)).toBe(201);
      return { teamId, userId, key: bodyOf<CreatedApiKey>(key).key, name };
    }

    async function createEnvironment(body: Record<string, unknown>, key = admin): Promise<CloudEnvironment> {
      const res = await call('POST', '/api/v1/agent/environments', { body, key });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return bodyOf<CloudEnvironment>(res);
    }

    async function sse(runId: string, options: { key?: string; headers?: Record<string, string> } = {}): Promise<SseStream> {
      const stream = await openSse(`${server.url}/api/v1/agent/runs/${runId}/events`, {
        authorization: `Bearer ${options.key ?? admin}`,
        ...options.headers,
      });
      streams.push(stream);
      return stream;
    }

    describe('service endpoints', () => {
      it('answers /healthz with ok without a key', async () => {
        const res = await api(server, 'GET', '/healthz');
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ status: 'ok' });
      });

      it('serves an OpenAPI 3.1 document that lists the runs and environments paths', async () => {
        const res = await api(server, 'GET', '/api/v1/openapi.json');
        expect(res.status).toBe(200);
        const doc = bodyOf<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(res);
        expect(doc.openapi).toBe('3.1.0');
        expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/agent/runs', '/api/v1/agent/environments']));
        expect(Object.keys(doc.paths['/api/v1/agent/runs'] ?? {})).toEqual(expect.arrayContaining(['get', 'post']));
      });
    });

    describe('authentication', () => {
      it('answers a request without a key with 401 authentication_required as problem+json', async () => {
        for (const [method, path] of [
          ['GET', '/api/v1/agent/runs'],
          ['POST', '/api/v1/agent/runs'],
          ['GET', '/api/v1/agent/environments'],
          ['GET', '/api/v1/me'],
        ] as const) {
          const res = await api(server, method, path, { key: null, ...(method === 'POST' ? { body: { prompt: 'x' } } : {}) });
          const problem = expectProblem(res, 401, 'authentication_required');
          expect(problem.instance).toBe(path);
        }
      });

      it('answers an unknown key, a non-oz key and a malformed Authorization header with 401', async () => {
        expectProblem(await api(server, 'GET', '/api/v1/me', { key: `oz_${'A'.repeat(43)}` }), 401, 'authentication_required');
        expectProblem(await api(server, 'GET', '/api/v1/me', { key: 'not-a-key' }), 401, 'authentication_required');
        expectProblem(await api(server, 'GET', '/api/v1/me', { headers: { authorization: `Basic ${admin}` } }), 401, 'authentication_required');
        const runs = await api(server, 'GET', '/api/v1/agent/runs', { key: `${admin}x` });
        expectProblem(runs, 401, 'authentication_required');
      });
    });

    describe('request validation', () => {
      it('rejects a run without a prompt with 400 invalid_request naming prompt', async () => {
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { config: {} } }), 400, 'invalid_request', 'prompt');
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: '   ' } }), 400, 'invalid_request', 'prompt');
      });

      it('rejects config.harness given as a bare string with 400 naming config.harness', async () => {
        const problem = expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { harness: 'oz' } } }), 400, 'invalid_request', 'config.harness');
        expect(problem.detail).toMatch(/object/);
      });

      it('rejects an unknown top-level field with 400 naming that field', async () => {
        const before = await allRunIds();
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', colour: 'blue' } }), 400, 'invalid_request', 'colour');
        expect(await allRunIds()).toEqual(before);
      });

      it('rejects an unknown field inside config with 400 naming config and that field', async () => {
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { colour: 'blue' } } }), 400, 'invalid_request', 'config.colour');
      });

      it('rejects a body that is not valid JSON with 400 invalid_request', async () => {
        const problem = expectProblem(
          await call('POST', '/api/v1/agent/runs', { rawBody: '{"prompt": "x"', headers: { 'content-type': 'application/json' } }),
          400,
          'invalid_request',
        );
        expect(problem.reason).toBe('body');
        expect(problem.detail).toMatch(/not valid JSON/);
      });

      it('rejects a text/plain body with 415 as problem+json', async () => {
        const problem = expectProblem(
          await call('POST', '/api/v1/agent/runs', { rawBody: 'please fix the bug', headers: { 'content-type': 'text/plain' } }),
          415,
          'invalid_request',
        );
        expect(problem.reason).toBe('content-type');
      });

      it('rejects a body of another media type with 415 as problem+json', async () => {
        const problem = expectProblem(
          await call('POST', '/api/v1/agent/runs', { rawBody: '<prompt>x</prompt>', headers: { 'content-type': 'application/xml' } }),
          415,
          'invalid_request',
        );
        expect(problem.reason).toBe('content-type');
      });

      it('rejects a body over 1 MB with 413 as problem+json', async () => {
        const before = await allRunIds();
        const problem = expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'a'.repeat(1024 * 1024 + 10) } }), 413, 'invalid_request');
        expect(problem.detail).toMatch(/too large/);
        expect(await allRunIds()).toEqual(before);
      });
    });

    describe('unimplemented features and unknown paths', () => {
      it('answers unimplemented spec fields with feature_not_available naming the field, and creates nothing', async () => {
        const before = await allRunIds();
        const cases: [Record<string, unknown>, string][] = [
          [{ prompt: 'x', skill: 'owner/repo:skill' }, 'skill'],
          [{ prompt: 'x', config: { mcp_servers: { github: {} } } }, 'config.mcp_servers'],
          [{ prompt: 'x', attachments: [{ file_name: 'a.txt', data: 'eA==' }] }, 'attachments'],
          [{ prompt: 'x', config: { computer_use_enabled: true } }, 'config.computer_use_enabled'],
        ];
        for (const [body, field] of cases) {
          const problem = expectProblem(await call('POST', '/api/v1/agent/runs', { body }), 403, 'feature_not_available', field);
          expect(problem.retryable).toBe(false);
        }
        expect(await allRunIds()).toEqual(before);
      });

      it('answers an unimplemented spec path with feature_not_available', async () => {
        const problem = expectProblem(await call('GET', '/api/v1/agent/identities'), 403, 'feature_not_available');
        expect(problem.detail).toContain('/api/v1/agent/identities');
        expectProblem(await call('POST', '/api/v1/agent/messages', { body: {} }), 403, 'feature_not_available');
        // Authentication still comes first.
        expectProblem(await api(server, 'GET', '/api/v1/agent/identities'), 401, 'authentication_required');
      });

      it('answers an unknown path with 404 resource_not_found as problem+json', async () => {
        const problem = expectProblem(await call('GET', '/api/v1/agent/nothing-here'), 404, 'resource_not_found');
        expect(problem.detail).toContain('/api/v1/agent/nothing-here');
        expectProblem(await call('GET', '/no/such/path'), 404, 'resource_not_found');
      });
    });

    describe('team isolation and admin authorization', () => {
      it("hides each team's runs and environments from the other with 404, never 403", async () => {
        const other = await newTeam();
        const adminRun = (await createRun({ prompt: 'admin team run' })).run_id;
        const adminEnv = (await createEnvironment({ name: unique('admin-env') })).uid;
        const otherRun = (await createRun({ prompt: 'other team run' }, { key: other.key })).run_id;
        const otherEnv = (await createEnvironment({ name: unique('other-env') }, other.key)).uid;

        const probe = async (key: string, runId: string, envId: string): Promise<void> => {
          for (const [method, path, body] of [
            ['GET', `/api/v1/agent/runs/${runId}`, undefined],
            ['POST', `/api/v1/agent/runs/${runId}/cancel`, undefined],
            ['GET', `/api/v1/agent/runs/${runId}/conversation`, undefined],
            ['GET', `/api/v1/agent/conversations/${runId}`, undefined],
            ['GET', `/api/v1/agent/runs/${runId}/events`, undefined],
            ['POST', `/api/v1/agent/runs/${runId}/followups`, { message: 'not yours' }],
            ['GET', `/api/v1/agent/runs/${runId}/diff`, undefined],
            ['GET', `/api/v1/agent/environments/${envId}`, undefined],
            ['PATCH', `/api/v1/agent/environments/${envId}`, { name: 'stolen' }],
            ['DELETE', `/api/v1/agent/environments/${envId}`, undefined],
          ] as const) {
            const res = await call(method, path, { key, ...(body ? { body } : {}) });
            expectProblem(res, 404, 'resource_not_found');
          }
          expectProblem(
            await call('POST', '/api/v1/agent/runs', { key, body: { prompt: 'x', config: { environment_id: envId } } }),
            404,
            'resource_not_found',
            'config.environment_id',
          );
          expectProblem(await call('GET', `/api/v1/agent/runs?ancestor_run_id=${runId}`, { key }), 404, 'resource_not_found');
          expect(await allRunIds(key)).not.toContain(runId);
          const envs = bodyOf<ListEnvironmentsResponse>(await call('GET', '/api/v1/agent/environments', { key }));
          expect(envs.environments.map((e) => e.uid)).not.toContain(envId);
        };
        await probe(other.key, adminRun, adminEnv);
        await probe(admin, otherRun, otherEnv);

        // Nothing the other team tried changed anything.
        expect((await getRun(adminRun)).state).not.toBe('CANCELLED');
        expect((await getRun(otherRun, other.key)).state).not.toBe('CANCELLED');
        const env = await call('GET', `/api/v1/agent/environments/${adminEnv}`);
        expect(bodyOf<CloudEnvironment>(env).config.name).not.toBe('stolen');
        expect(await allRunIds(other.key)).toEqual([otherRun]);
      });

      it('answers a member key on admin routes and worker tokens with 403 not_authorized', async () => {
        const member = await newTeam();
        for (const [method, path, body] of [
          ['POST', '/api/v1/admin/teams', { name: unique('sneaky') }],
          ['POST', '/api/v1/admin/users', { email: 'sneaky@example.test', team: member.name }],
          ['POST', `/api/v1/admin/users/${member.userId}/api-keys`, { name: 'sneaky' }],
          ['POST', '/api/v1/worker-tokens', { name: 'sneaky' }],
          ['GET', '/api/v1/worker-tokens', undefined],
          ['POST', '/api/v1/worker-tokens/whatever/revoke', undefined],
        ] as const) {
          const res = await call(method, path, { key: member.key, ...(body ? { body } : {}) });
          expectProblem(res, 403, 'not_authorized');
        }
        const me = bodyOf<Me>(await call('GET', '/api/v1/me', { key: member.key }));
        expect(me.user.role).toBe('member');
        expect(me.team.uid).toBe(member.teamId);
      });
    });

    describe('runs', () => {
      it('creates a run on /agent/runs and on the /agent/run alias with run_id, task_id, state and at_capacity', async () => {
        for (const path of ['/api/v1/agent/runs', '/api/v1/agent/run']) {
          const res = await call('POST', path, { body: { prompt: `via ${path}` } });
          expect(res.status, JSON.stringify(res.body)).toBe(200);
          const created = bodyOf<CreatedRun>(res);
          expect(created.run_id).toMatch(/^[0-9a-f-]{36}$/);
          expect(created.task_id).toBe(created.run_id);
          expect(['QUEUED', 'PENDING']).toContain(created.state);
          expect(created.at_capacity).toBe(created.state === 'QUEUED');
          const run = await getRun(created.run_id);
          expect(run.prompt).toBe(`via ${path}`);
          expect(run.state).toBe(created.state);
        }
      });

      it('shows a created run with source API, a title from the first line, its conversation id and state timestamps', async () => {
        const { run_id } = await createRun({ prompt: '  Fix the login redirect  \nIt loops forever on Safari.' });
        const run = await getRun(run_id);
        expect(run).toMatchObject({
          run_id,
          task_id: run_id,
          source: 'API',
          title: 'Fix the login redirect',
          conversation_id: run_id,
          agent_config: { harness: { type: 'oz' }, model_id: DEFAULT_MODEL },
          scope: { type: 'Team' },
        });
        // The schema trims the prompt; the text itself is kept.
        expect(run.prompt).toBe('Fix the login redirect  \nIt loops forever on Safari.');
        expect(run.created_at).toMatch(RFC3339);
        expect(run.updated_at).toMatch(RFC3339);
        expect(run.state_timestamps.QUEUED).toMatch(RFC3339);
        expect(Object.keys(run.state_timestamps)).toContain(run.state);
      });

      it('records source CLI when the client says x-oz-client: cli, and keeps an explicit title', async () => {
        const { run_id } = await createRun({ prompt: 'from the terminal', title: 'My title' }, { headers: { 'x-oz-client': 'cli' } });
        const run = await getRun(run_id);
        expect(run.source).toBe('CLI');
        expect(run.title).toBe('My title');
        const cliRuns = await listRuns('?source=CLI&limit=500');
        expect(cliRuns.runs.map((r) => r.run_id)).toContain(run_id);
        expect(cliRuns.runs.every((r) => r.source === 'CLI')).toBe(true);
      });

      it('keeps config.snapshot: false (a cold start) on the run, drops true (the default), and refuses anything else naming config.snapshot', async () => {
        const cold = await getRun((await createRun({ prompt: 'cold', config: { snapshot: false } })).run_id);
        expect(cold.agent_config.snapshot).toBe(false);
        const warm = await getRun((await createRun({ prompt: 'warm', config: { snapshot: true } })).run_id);
        expect(warm.agent_config).not.toHaveProperty('snapshot');
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { snapshot: 'no' } } }), 400, 'invalid_request', 'config.snapshot');
      });

      it('runs in an existing environment and answers a missing one with 404 naming config.environment_id', async () => {
        const env = await createEnvironment({ name: unique('run-env') });
        const { run_id } = await createRun({ prompt: 'in an env', config: { environment_id: env.uid } });
        expect((await getRun(run_id)).agent_config.environment_id).toBe(env.uid);

        const before = await allRunIds();
        expectProblem(
          await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { environment_id: 'no-such-environment' } } }),
          404,
          'resource_not_found',
          'config.environment_id',
        );
        expect(await allRunIds()).toEqual(before);
      });

      it('answers an unknown run id with 404 resource_not_found', async () => {
        expectProblem(await call('GET', '/api/v1/agent/runs/no-such-run'), 404, 'resource_not_found');
        expectProblem(await call('POST', '/api/v1/agent/runs/no-such-run/cancel'), 404, 'resource_not_found');
      });

      it("queues runs beyond the team's concurrency limit and admits the next one when a run is cancelled", async () => {
        const team = await newTeam(1);
        const first = await createRun({ prompt: 'first' }, { key: team.key });
        expect(first).toMatchObject({ state: 'PENDING', at_capacity: false });
        const second = await createRun({ prompt: 'second' }, { key: team.key });
        expect(second).toMatchObject({ state: 'QUEUED', at_capacity: true });
        expect((await getRun(second.run_id, team.key)).state).toBe('QUEUED');

        await cancel(first.run_id, team.key);
        const admitted = await getRun(second.run_id, team.key);
        expect(admitted.state).toBe('PENDING');
        expect(admitted.state_timestamps.PENDING).toMatch(RFC3339);
        expect((await getRun(first.run_id, team.key)).state).toBe('CANCELLED');
      });
    });

    describe('idempotency', () => {
      it('returns the same run for a repeated Idempotency-Key with the same body', async () => {
        const key = unique('idem');
        const body = { prompt: `idempotent ${key}` };
        const a = await createRun(body, { headers: { 'idempotency-key': key } });
        const b = await createRun(body, { headers: { 'idempotency-key': key } });
        expect(b.run_id).toBe(a.run_id);
        const same = (await listRuns('?limit=500')).runs.filter((r) => r.prompt === body.prompt);
        expect(same.map((r) => r.run_id)).toEqual([a.run_id]);
      });

      it('answers a reused Idempotency-Key with a different body with 409 conflict', async () => {
        const key = unique('idem');
        await createRun({ prompt: 'one body' }, { headers: { 'idempotency-key': key } });
        const before = await allRunIds();
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'another body' }, headers: { 'idempotency-key': key } }), 409, 'conflict');
        expect(await allRunIds()).toEqual(before);
      });
    });

    describe('listing runs', () => {
      it('filters by a single state and by repeated states', async () => {
        const team = await newTeam(1);
        const pending = await createRun({ prompt: 'p' }, { key: team.key });
        const queued = await createRun({ prompt: 'q' }, { key: team.key });
        const cancelled = await createRun({ prompt: 'c' }, { key: team.key });
        await cancel(cancelled.run_id, team.key);

        const ids = (l: RunList) => l.runs.map((r) => r.run_id).sort();
        expect(ids(await listRuns('?state=QUEUED', team.key))).toEqual([queued.run_id]);
        expect(ids(await listRuns('?state=PENDING', team.key))).toEqual([pending.run_id]);
        expect(ids(await listRuns('?state=QUEUED&state=CANCELLED', team.key))).toEqual([queued.run_id, cancelled.run_id].sort());
        expect((await listRuns('?state=QUEUED&state=CANCELLED', team.key)).runs.every((r) => r.state === 'QUEUED' || r.state === 'CANCELLED')).toBe(true);
        expect(ids(await listRuns('', team.key))).toEqual([pending.run_id, queued.run_id, cancelled.run_id].sort());
        expectProblem(await call('GET', '/api/v1/agent/runs?state=SLEEPING', { key: team.key }), 400, 'invalid_request', 'query.state');
      });

      it('orders by updated_at descending by default', async () => {
        const team = await newTeam(10);
        const a = await createRun({ prompt: 'a' }, { key: team.key });
        await sleep(5);
        const b = await createRun({ prompt: 'b' }, { key: team.key });
        await sleep(5);
        const c = await createRun({ prompt: 'c' }, { key: team.key });
        await sleep(5);
        await cancel(a.run_id, team.key);

        const list = await listRuns('', team.key);
        expect(list.runs.map((r) => r.run_id)).toEqual([a.run_id, c.run_id, b.run_id]);
        const times = list.runs.map((r) => Date.parse(r.updated_at));
        expect([...times].sort((x, y) => y - x)).toEqual(times);
        const asc = await listRuns('?sort_order=asc', team.key);
        expect(asc.runs.map((r) => r.run_id)).toEqual([b.run_id, c.run_id, a.run_id]);
      });

      it('pages through with limit and next_cursor without repeats or gaps', async () => {
        const team = await newTeam(10);
        const created: string[] = [];
        for (let i = 0; i < 5; i++) created.push((await createRun({ prompt: `page ${i}` }, { key: team.key })).run_id);

        const seen: string[] = [];
        const sizes: number[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 10; page++) {
          const list = await listRuns(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, team.key);
          sizes.push(list.runs.length);
          seen.push(...list.runs.map((r) => r.run_id));
          expect(list.page_info.has_next_page).toBe(list.page_info.next_cursor !== undefined);
          cursor = list.page_info.next_cursor;
          if (!cursor) break;
        }
        expect(sizes).toEqual([2, 2, 1]);
        expect(new Set(seen).size).toBe(seen.length);
        expect([...seen].sort()).toEqual([...created].sort());
        expect(seen).toEqual((await listRuns('', team.key)).runs.map((r) => r.run_id));
      });

      it('refuses a cursor reused with other filters, and a bad limit or sort_by, naming the query field', async () => {
        const team = await newTeam(10);
        for (let i = 0; i < 3; i++) await createRun({ prompt: `cursor ${i}` }, { key: team.key });
        const first = await listRuns('?limit=1', team.key);
        const cursor = first.page_info.next_cursor ?? '';
        expect(cursor.length).toBeGreaterThan(0);

        expectProblem(await call('GET', `/api/v1/agent/runs?limit=1&state=PENDING&cursor=${encodeURIComponent(cursor)}`, { key: team.key }), 400, 'invalid_request', 'cursor');
        expectProblem(await call('GET', `/api/v1/agent/runs?limit=1&sort_by=created_at&cursor=${encodeURIComponent(cursor)}`, { key: team.key }), 400, 'invalid_request', 'cursor');
        expectProblem(await call('GET', '/api/v1/agent/runs?cursor=garbage', { key: team.key }), 400, 'invalid_request', 'cursor');
        // The same cursor with the same query still works.
        expect((await listRuns(`?limit=1&cursor=${encodeURIComponent(cursor)}`, team.key)).runs).toHaveLength(1);

        expectProblem(await call('GET', '/api/v1/agent/runs?limit=0'), 400, 'invalid_request', 'query.limit');
        expectProblem(await call('GET', '/api/v1/agent/runs?limit=501'), 400, 'invalid_request', 'query.limit');
        expectProblem(await call('GET', '/api/v1/agent/runs?sort_by=bogus'), 400, 'invalid_request', 'query.sort_by');
        expectProblem(await call('GET', '/api/v1/agent/runs?color=red'), 400, 'invalid_request');
      });
    });

    describe('conversations', () => {
      it('returns the prompt as the first user text block and state changes as state_changed events, on both paths', async () => {
        const prompt = 'Summarise the README\nin three bullet points';
        const { run_id } = await createRun({ prompt });
        await cancel(run_id);

        const byRun = await call('GET', `/api/v1/agent/runs/${run_id}/conversation`);
        expect(byRun.status).toBe(200);
        const byConversation = await call('GET', `/api/v1/agent/conversations/${run_id}`);
        expect(byConversation.status).toBe(200);
        expect(byConversation.body).toEqual(byRun.body);

        const conversation = bodyOf<Conversation>(byRun);
        expect(conversation.conversation_id).toBe(run_id);
        expect(conversation.steps).toHaveLength(1);
        const messages = conversation.steps[0]?.messages ?? [];
        expect(messages[0]?.role).toBe('user');
        expect(messages[0]?.content[0]).toEqual({ type: 'text', text: prompt });
        const events = messages.flatMap((m) => m.content).filter((b) => b.type === 'event');
        expect(events.length).toBeGreaterThanOrEqual(2);
        expect(events.every((b) => b.name === 'state_changed')).toBe(true);
        expect(events[0]?.data).toMatchObject({ from: null, to: 'QUEUED' });
        expect(events[events.length - 1]?.data).toMatchObject({ to: 'CANCELLED' });

        expectProblem(await call('GET', '/api/v1/agent/conversations/no-such-conversation'), 404, 'resource_not_found');
      });
    });

    describe('follow-ups', () => {
      const followUp = async (id: string, message: string, key = admin) => {
        const res = await call('POST', `/api/v1/agent/runs/${id}/followups`, { key, body: { message } });
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        return res.body as { run_id: string; execution: number; state: string; delivery: string; followup: { seq: number; created_at: string } };
      };

      it('to a run that has not started: with its start, in the same execution; the conversation holds it after the prompt', async () => {
        const { run_id } = await createRun({ prompt: 'first ask' });
        const sent = await followUp(run_id, 'and then this');
        expect(sent).toMatchObject({ run_id, execution: 1, delivery: 'with_start', followup: { seq: 1 } });
        expect(sent.followup.created_at).toMatch(RFC3339);
        const run = await getRun(run_id);
        expect(run.execution).toBe(1);
        expect(run.executions.map((e) => [e.number, e.state])).toEqual([[1, run.state]]);
        const conversation = bodyOf<Conversation>(await call('GET', `/api/v1/agent/runs/${run_id}/conversation`));
        const users = conversation.steps.flatMap((s) => s.messages.filter((m) => m.role === 'user').flatMap((m) => m.content.map((c) => (c as { text?: string }).text)));
        expect(users).toEqual(['first ask', 'and then this']);
      });

      it('to an ended run: its next execution, the first keeping its outcome; racing follow-ups start one execution and number themselves 1..n', async () => {
        const { run_id } = await createRun({ prompt: 'to continue' });
        await cancel(run_id);
        const answers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((m) => followUp(run_id, m)));
        expect(answers.map((a) => a.followup.seq).sort()).toEqual([1, 2, 3, 4, 5]);
        expect(answers.filter((a) => a.delivery === 'new_execution')).toHaveLength(1);
        expect(new Set(answers.map((a) => a.execution))).toEqual(new Set([2]));
        const run = await getRun(run_id);
        expect(run.execution).toBe(2);
        expect(['QUEUED', 'PENDING']).toContain(run.state);
        expect(run.executions.map((e) => e.state)).toEqual(['CANCELLED', run.state]);
        expect(run.executions[0]?.ended_at).toMatch(RFC3339);
        expect(run.executions[1]?.ended_at).toBeNull();
        // The new execution can be cancelled like any waiting run, and continued again.
        await cancel(run_id);
        expect((await followUp(run_id, 'once more')).execution).toBe(3);
      });

      it('with conversation_id on creation: the same run goes on with the prompt; another config is refused naming it', async () => {
        const { run_id } = await createRun({ prompt: 'original' });
        await cancel(run_id);
        const continued = await createRun({ prompt: 'continue it', conversation_id: run_id });
        expect(continued.run_id).toBe(run_id);
        expect((await getRun(run_id)).execution).toBe(2);
        expectProblem(
          await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', conversation_id: run_id, config: { model_id: DEFAULT_MODEL } } }),
          400,
          'invalid_request',
          'config.model_id',
        );
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', conversation_id: 'no-such-run' } }), 404, 'resource_not_found', 'conversation_id');
        // Retry-safe with an Idempotency-Key: the same request again sends nothing more; another body under the key is a 409.
        const key = unique('continue');
        const body = { prompt: 'once only', conversation_id: run_id };
        expect((await createRun(body, { headers: { 'idempotency-key': key } })).run_id).toBe(run_id);
        expect((await createRun(body, { headers: { 'idempotency-key': key } })).run_id).toBe(run_id);
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { ...body, prompt: 'another' }, headers: { 'idempotency-key': key } }), 409, 'conflict');
        const conversation = bodyOf<Conversation>(await call('GET', `/api/v1/agent/runs/${run_id}/conversation`));
        const users = conversation.steps.flatMap((s) => s.messages.filter((m) => m.role === 'user').flatMap((m) => m.content.map((c) => (c as { text?: string }).text)));
        expect(users.filter((t) => t === 'once only')).toHaveLength(1);
      });

      it("refuses a teammate's follow-up: only the run's creator steers it (its executions may hold the creator's personal secrets)", async () => {
        const team = await newTeam();
        const { run_id } = await createRun({ prompt: 'mine' }, { key: team.key });
        const mate = await call('POST', '/api/v1/admin/users', { body: { email: `${unique('mate')}@example.test`, team: team.name } });
        expect(mate.status, JSON.stringify(mate.body)).toBe(201);
        const mateKey = await call('POST', `/api/v1/admin/users/${bodyOf<UserItem>(mate).uid}/api-keys`, { body: { name: 'mate' } });
        const key = bodyOf<CreatedApiKey>(mateKey).key;
        for (const res of [
          await call('POST', `/api/v1/agent/runs/${run_id}/followups`, { key, body: { message: 'do it my way' } }),
          await call('POST', '/api/v1/agent/runs', { key, body: { prompt: 'x', conversation_id: run_id } }),
        ]) {
          expect(expectProblem(res, 403, 'not_authorized').reason).toBe('creator_only');
        }
        expect((await getRun(run_id, team.key)).execution).toBe(1);
        expect((await followUp(run_id, 'fine', team.key)).followup.seq).toBe(1);
      });

      it('validates the message and the new config fields, writing nothing', async () => {
        const { run_id } = await createRun({ prompt: 'validate' });
        expectProblem(await call('POST', `/api/v1/agent/runs/${run_id}/followups`, { body: {} }), 400, 'invalid_request', 'message');
        expectProblem(await call('POST', `/api/v1/agent/runs/${run_id}/followups`, { body: { message: '  ' } }), 400, 'invalid_request', 'message');
        expectProblem(await call('POST', `/api/v1/agent/runs/${run_id}/followups`, { body: { message: 'x', attachments: [{}] } }), 403, 'feature_not_available', 'attachments');
        expect((await getRun(run_id)).execution).toBe(1);
        const before = await allRunIds();
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { idle_timeout_minutes: 61 } } }), 400, 'invalid_request');
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { branches: { app: 'main' } } } }), 400, 'invalid_request', 'config.branches');
        const env = await createEnvironment({ name: unique('branches-env'), repos: [{ url: 'https://github.com/acme/web.git' }] });
        expectProblem(
          await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { environment_id: env.uid, branches: { other: 'main' } } } }),
          400,
          'invalid_request',
          'config.branches',
        );
        expectProblem(await call('POST', '/api/v1/agent/runs', { body: { prompt: 'x', config: { environment_id: env.uid, branches: { web: '-bad' } } } }), 400, 'invalid_request');
        expect(await allRunIds()).toEqual(before);
        const ok = await createRun({ prompt: 'x', config: { environment_id: env.uid, branches: { 'acme/web': 'feature/x' }, idle_timeout_minutes: 5 } });
        const run = await getRun(ok.run_id);
        expect(run.agent_config).toMatchObject({ branches: { 'https://github.com/acme/web.git': 'feature/x' }, idle_timeout_minutes: 5 });
      });
    });

    describe('cancelling runs', () => {
      it('cancels a waiting run: 200 with the run id as a JSON string, then CANCELLED with a status message', async () => {
        const { run_id } = await createRun({ prompt: 'to be cancelled' });
        const res = await call('POST', `/api/v1/agent/runs/${run_id}/cancel`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
        expect(res.body).toBe(run_id);

        const run = await getRun(run_id);
        expect(run.state).toBe('CANCELLED');
        expect(run.status_message?.message).toMatch(/Cancelled by admin@localhost/);
        expect(run.state_timestamps.CANCELLED).toMatch(RFC3339);
      });

      it('cancels a queued run as well as a pending one', async () => {
        const team = await newTeam(1);
        const pending = await createRun({ prompt: 'pending' }, { key: team.key });
        const queued = await createRun({ prompt: 'queued' }, { key: team.key });
        expect([pending.state, queued.state]).toEqual(['PENDING', 'QUEUED']);
        await cancel(queued.run_id, team.key);
        expect((await getRun(queued.run_id, team.key)).state).toBe('CANCELLED');
        // Cancelling a queued run frees nothing: the pending one stays pending.
        expect((await getRun(pending.run_id, team.key)).state).toBe('PENDING');
      });

      it('answers cancelling an already cancelled run with 400 invalid_request', async () => {
        const { run_id } = await createRun({ prompt: 'cancel twice' });
        await cancel(run_id);
        const problem = expectProblem(await call('POST', `/api/v1/agent/runs/${run_id}/cancel`), 400, 'invalid_request');
        expect(problem.detail).toContain('CANCELLED');
        expect((await getRun(run_id)).state).toBe('CANCELLED');
      });
    });

    describe('run events (SSE)', () => {
      const dataOf = (frame: SseFrame | undefined) => JSON.parse(frame?.data ?? 'null') as { seq: number; type: string; data: { from: string | null; to: string } } | null;

      it('streams the existing events, then a cancel from another request as a state event and an end event, and closes', async () => {
        const team = await newTeam(5);
        const { run_id, state } = await createRun({ prompt: 'stream me' }, { key: team.key });
        // seq 1: → QUEUED, seq 2: → PENDING (the team has room).
        expect(state).toBe('PENDING');
        const existing = 2;

        const stream = await sse(run_id, { key: team.key });
        expect(stream.status).toBe(200);
        expect(stream.headers.get('content-type') ?? '').toMatch(/^text\/event-stream/);
        await stream.waitFor(`${existing} existing events`, (frames) => frames.length >= existing);
        expect(stream.frames.map((f) => f.id)).toEqual(Array.from({ length: existing }, (_, i) => String(i + 1)));
        expect(stream.frames.every((f) => f.event === 'state')).toBe(true);
        expect(dataOf(stream.frames[0])).toMatchObject({ seq: 1, type: 'state', data: { from: null, to: 'QUEUED' } });
        expect(stream.ended).toBe(false);

        await cancel(run_id, team.key);
        await stream.waitFor('the end event', (frames) => frames.some((f) => f.event === 'end'));
        await stream.closed();

        const frames = stream.frames;
        expect(frames.map((f) => f.event)).toEqual([...Array.from({ length: existing + 1 }, () => 'state'), 'end']);
        const last = frames[existing];
        expect(last?.id).toBe(String(existing + 1));
        expect(dataOf(last)).toMatchObject({ seq: existing + 1, data: { to: 'CANCELLED' } });
        for (const f of frames.slice(0, -1)) expect(dataOf(f)?.seq).toBe(Number(f.id));
        expect(JSON.parse(frames[existing + 1]?.data ?? 'null')).toMatchObject({ state: 'CANCELLED', last_seq: existing + 1 });
      });

      it('resumes after Last-Event-ID with exactly the later events, none lost and none repeated', async () => {
        const limited = await newTeam(1);
        const holder = await createRun({ prompt: 'holds the only slot' }, { key: limited.key });
        expect(holder.state).toBe('PENDING');
        const { run_id } = await createRun({ prompt: 'resume me' }, { key: limited.key });
        // seq 1: → QUEUED; cancelling the holder admits it (seq 2: → PENDING); then cancel it (seq 3: → CANCELLED).
        await cancel(holder.run_id, limited.key);
        await cancel(run_id, limited.key);

        const open = async (lastEventId: string | null): Promise<SseFrame[]> => {
          const stream = await openSse(`${server.url}/api/v1/agent/runs/${run_id}/events`, {
            authorization: `Bearer ${limited.key}`,
            ...(lastEventId !== null ? { 'last-event-id': lastEventId } : {}),
          });
          streams.push(stream);
          expect(stream.status).toBe(200);
          await stream.closed();
          return stream.frames;
        };

        const all = await open(null);
        expect(all.map((f) => f.id)).toEqual(['1', '2', '3', null]);
        expect(all.slice(0, 3).map((f) => dataOf(f)?.data.to)).toEqual(['QUEUED', 'PENDING', 'CANCELLED']);
        for (const n of [0, 1, 2, 3]) {
          const resumed = await open(String(n));
          expect(
            resumed.map((f) => f.id),
            `Last-Event-ID: ${n}`,
          ).toEqual([...all.slice(n, 3).map((f) => f.id), null]);
          expect(resumed.slice(0, -1).map((f) => f.data)).toEqual(all.slice(n, 3).map((f) => f.data));
          expect(resumed[resumed.length - 1]?.event).toBe('end');
        }
        expectProblem(await call('GET', `/api/v1/agent/runs/${run_id}/events`, { key: limited.key, headers: { 'last-event-id': 'abc' } }), 400, 'invalid_request', 'Last-Event-ID');
      });

      it('delivers events written while a resumed stream is open, continuing from Last-Event-ID', async () => {
        const { run_id } = await createRun({ prompt: 'live resume' });
        const first = await sse(run_id);
        await first.waitFor('the first event', (frames) => frames.length >= 1);
        first.abort();
        const resumed = await sse(run_id, { headers: { 'last-event-id': '1' } });
        await cancel(run_id);
        await resumed.waitFor('the end event', (frames) => frames.some((f) => f.event === 'end'));
        await resumed.closed();
        const ids = resumed.frames.filter((f) => f.id !== null).map((f) => Number(f.id));
        expect(ids[0]).toBe(2);
        expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 2));
        expect(dataOf(resumed.frames[resumed.frames.length - 2])?.data.to).toBe('CANCELLED');
      });
    });

    describe('environments', () => {
      const fullBody = (name: string) => ({
        name,
        github_repos: [{ owner: 'acme', repo: 'web' }],
        repos: [{ url: 'file:///tmp/x.git', branch: 'main' }],
        setup_commands: ['npm ci'],
        maintenance_commands: ['npm install'],
        env: { FOO: 'bar' },
        network: 'off',
      });

      it('creates an environment in the CloudEnvironment shape and reads it back, alone and in the list', async () => {
        const me = bodyOf<Me>(await call('GET', '/api/v1/me'));
        const name = unique('web');
        const res = await call('POST', '/api/v1/agent/environments', { body: fullBody(name) });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        const env = bodyOf<CloudEnvironment>(res);
        expect(env.uid).toEqual(expect.any(String));
        expect(env).toMatchObject({
          config: {
            name,
            description: null,
            github_repos: [{ owner: 'acme', repo: 'web' }],
            setup_commands: ['npm ci'],
            maintenance_commands: ['npm install'],
            env: { FOO: 'bar' },
            network: 'off',
          },
          setup_failed: false,
          scope: { type: 'Team', uid: me.team.uid },
          snapshot: null,
        });
        expect(env.config.repos).toContainEqual({ url: 'file:///tmp/x.git', branch: 'main' });
        expect(env.config.repos).toContainEqual({ url: 'https://github.com/acme/web.git' });
        expect(env.last_updated).toMatch(RFC3339);

        const one = await call('GET', `/api/v1/agent/environments/${env.uid}`);
        expect(one.status).toBe(200);
        expect(one.body).toEqual(env);
        const list = bodyOf<ListEnvironmentsResponse>(await call('GET', '/api/v1/agent/environments'));
        expect(list.environments.find((e) => e.uid === env.uid)).toEqual(env);
      });

      it('changes an environment with PATCH, removes the description with null, and deletes it', async () => {
        const env = await createEnvironment({ ...fullBody(unique('patch')), description: 'first version' });
        expect(env.config.description).toBe('first version');

        const patched = await call('PATCH', `/api/v1/agent/environments/${env.uid}`, { body: { name: 'renamed', setup_commands: ['pnpm i'], network: 'on' } });
        expect(patched.status, JSON.stringify(patched.body)).toBe(200);
        expect(bodyOf<CloudEnvironment>(patched).config).toMatchObject({
          name: 'renamed',
          description: 'first version',
          setup_commands: ['pnpm i'],
          maintenance_commands: ['npm install'],
          network: 'on',
          env: { FOO: 'bar' },
          github_repos: [{ owner: 'acme', repo: 'web' }],
        });

        const maintained = await call('PATCH', `/api/v1/agent/environments/${env.uid}`, { body: { maintenance_commands: ['pnpm i --prefer-offline', 'pnpm build'] } });
        expect(maintained.status, JSON.stringify(maintained.body)).toBe(200);
        expect(bodyOf<CloudEnvironment>(maintained).config).toMatchObject({ setup_commands: ['pnpm i'], maintenance_commands: ['pnpm i --prefer-offline', 'pnpm build'] });

        const cleared = await call('PATCH', `/api/v1/agent/environments/${env.uid}`, { body: { description: null } });
        expect(cleared.status).toBe(200);
        expect(bodyOf<CloudEnvironment>(cleared).config.description).toBeNull();
        expect(bodyOf<CloudEnvironment>(await call('GET', `/api/v1/agent/environments/${env.uid}`)).config).toMatchObject({ name: 'renamed', description: null });

        const deleted = await call('DELETE', `/api/v1/agent/environments/${env.uid}`);
        expect(deleted.status).toBe(200);
        expect(deleted.body).toEqual({ success: true });
        expectProblem(await call('GET', `/api/v1/agent/environments/${env.uid}`), 404, 'resource_not_found');
        expectProblem(await call('DELETE', `/api/v1/agent/environments/${env.uid}`), 404, 'resource_not_found');
        const list = bodyOf<ListEnvironmentsResponse>(await call('GET', '/api/v1/agent/environments'));
        expect(list.environments.map((e) => e.uid)).not.toContain(env.uid);
      });

      it('rejects invalid environments with 400 naming the field, and creates nothing', async () => {
        const names = async () => bodyOf<ListEnvironmentsResponse>(await call('GET', '/api/v1/agent/environments')).environments.map((e) => e.uid);
        const before = await names();
        const post = (body: Record<string, unknown>) => call('POST', '/api/v1/agent/environments', { body: { name: unique('bad'), ...body } });
        expectProblem(await post({ description: 'd'.repeat(241) }), 400, 'invalid_request', 'description');
        expectProblem(await post({ repos: [{ url: 'not a url' }] }), 400, 'invalid_request', 'repos[0].url');
        expect(expectProblem(await post({ env: { PATH: '/evil' } }), 400, 'invalid_request', 'env.PATH').detail).toContain('is reserved');
        expect(expectProblem(await post({ env: { '1BAD': 'x' } }), 400, 'invalid_request', 'env.1BAD').detail).toContain('environment variable name');
        expectProblem(await post({ env: { OZ_TOKEN: 'x' } }), 400, 'invalid_request', 'env.OZ_TOKEN');
        expectProblem(await post({ network: 'maybe' }), 400, 'invalid_request', 'network');
        expectProblem(await post({ maintenance_commands: ['npm i', '  '] }), 400, 'invalid_request', 'maintenance_commands[1]');
        expectProblem(await post({ maintenance_commands: ['x'.repeat(10_001)] }), 400, 'invalid_request', 'maintenance_commands[0]');
        expectProblem(await post({ maintenance_commands: Array.from({ length: 101 }, (_, i) => `echo ${i}`) }), 400, 'invalid_request', 'maintenance_commands');
        expectProblem(await post({ maintenance_commands: 'npm i' }), 400, 'invalid_request', 'maintenance_commands');
        expectProblem(await post({ devcontainer: 'not a repository' }), 400, 'invalid_request', 'devcontainer');
        expectProblem(await post({ devcontainer: 'acme/web:../../etc/passwd' }), 400, 'invalid_request', 'devcontainer');
        expectProblem(await call('POST', '/api/v1/agent/environments', { body: {} }), 400, 'invalid_request', 'name');
        expect(await names()).toEqual(before);

        const env = await createEnvironment({ name: unique('valid') });
        expectProblem(await call('PATCH', `/api/v1/agent/environments/${env.uid}`, { body: { description: 'd'.repeat(241) } }), 400, 'invalid_request', 'description');
        expectProblem(await call('PATCH', `/api/v1/agent/environments/${env.uid}`, { body: { network: 'maybe' } }), 400, 'invalid_request', 'network');
        expectProblem(await call('PATCH', `/api/v1/agent/environments/${env.uid}`, { body: { maintenance_commands: [''] } }), 400, 'invalid_request', 'maintenance_commands[0]');
      });
    });

    describe('API keys', () => {
      it('creates a key shown once, never lists its secret, authenticates with it, and expires it', async () => {
        const name = unique('laptop');
        const res = await call('POST', '/api/v1/api-keys', { body: { name } });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        const created = bodyOf<CreatedApiKey>(res);
        expect(created.key).toMatch(/^oz_[A-Za-z0-9_-]{20,}$/);
        expect(created).toMatchObject({ name, expired: false });
        expect(created.key.startsWith(created.prefix)).toBe(true);

        const listed = await call('GET', '/api/v1/api-keys');
        expect(listed.status).toBe(200);
        expect(JSON.stringify(listed.body)).not.toContain(created.key);
        const entry = bodyOf<ListApiKeysResponse>(listed).api_keys.find((k) => k.uid === created.uid);
        expect(entry).toMatchObject({ name, expired: false });
        expect(Object.keys(entry ?? {})).not.toContain('key');

        const me = await call('GET', '/api/v1/me', { key: created.key });
        expect(me.status).toBe(200);
        expect(bodyOf<Me>(me)).toMatchObject({ user: { email: 'admin@localhost' }, api_key: { uid: created.uid } });

        const expired = await call('POST', `/api/v1/api-keys/${created.uid}/expire`);
        expect(expired.status).toBe(200);
        expect(expired.body).toEqual({ uid: created.uid, expired: true });
        expectProblem(await call('GET', '/api/v1/me', { key: created.key }), 401, 'authentication_required');
        // The admin key that expired it still works.
        expect((await call('GET', '/api/v1/me')).status).toBe(200);
      });

      it("cannot expire another user's key", async () => {
        const member = await newTeam();
        const memberKeys = bodyOf<ListApiKeysResponse>(await call('GET', '/api/v1/api-keys', { key: member.key })).api_keys;
        const memberKeyId = memberKeys[0]?.uid ?? '';
        expect(memberKeyId.length).toBeGreaterThan(0);
        expectProblem(await call('POST', `/api/v1/api-keys/${memberKeyId}/expire`), 404, 'resource_not_found');
        expect((await call('GET', '/api/v1/me', { key: member.key })).status).toBe(200);
      });
    });

    describe('worker tokens', () => {
      it('creates, lists without the secret, and revokes a worker token, which is never accepted as an API key', async () => {
        const name = unique('worker');
        const res = await call('POST', '/api/v1/worker-tokens', { body: { name } });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        const created = bodyOf<CreatedWorkerToken>(res);
        expect(created.token).toMatch(/^ozw_[A-Za-z0-9_-]{20,}$/);
        expect(created).toMatchObject({ name, revoked_at: null });

        const listed = await call('GET', '/api/v1/worker-tokens');
        expect(listed.status).toBe(200);
        expect(JSON.stringify(listed.body)).not.toContain(created.token);
        const tokens = () => call('GET', '/api/v1/worker-tokens').then((r) => bodyOf<ListWorkerTokensResponse>(r).worker_tokens);
        expect((await tokens()).find((t) => t.uid === created.uid)).toMatchObject({ revoked_at: null });

        expectProblem(await call('GET', '/api/v1/me', { key: created.token }), 401, 'authentication_required');
        expectProblem(await call('GET', '/api/v1/agent/runs', { key: created.token }), 401, 'authentication_required');

        const revoked = await call('POST', `/api/v1/worker-tokens/${created.uid}/revoke`);
        expect(revoked.status).toBe(200);
        expect(revoked.body).toEqual({ uid: created.uid, revoked: true });
        expect((await tokens()).find((t) => t.uid === created.uid)?.revoked_at).toMatch(RFC3339);
        expectProblem(await call('POST', '/api/v1/worker-tokens/no-such-token/revoke'), 404, 'resource_not_found');
      });
    });

    describe('models', () => {
      it('lists the configured default model with its provider', async () => {
        const res = await call('GET', '/api/v1/agent/models');
        expect(res.status).toBe(200);
        const body = bodyOf<ListModelsResponse>(res);
        expect(body.default_model_id).toBe(DEFAULT_MODEL);
        expect(body.models).toContainEqual(expect.objectContaining({ id: DEFAULT_MODEL, provider: 'ANTHROPIC' }));
      });
    });
  });
}
