import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListEnvironmentsResponse } from '../../src/api/environments.js';
import type { ListModelsResponse } from '../../src/api/models.js';
import type { ProblemBody } from '../../src/api/problem.js';
import type { RunAgentResponse, RunItem } from '../../src/api/runs.js';
import type { ScheduleItem } from '../../src/api/schedules.js';
import type { SecretItem } from '../../src/api/secrets.js';
import type { ClaimedRun } from '../../src/core/worker-protocol.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import { ProtocolClient } from '../../src/worker/protocol-client.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';

/**
 * The server side of "every Oz script and SDK call works unchanged": Oz's
 * model ids, the spec's RunItem fields, its error statuses, the fields the
 * SDK sends, the parent run in the claim, and the harness-key secret types.
 */
describe('Oz compatibility of the server', () => {
  let server: InProcessApp;
  let key: string;
  let worker: ProtocolClient;
  let n = 0;
  const unique = (what: string): string => `${what}-${++n}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    server = await startInProcessApp({ models: { defaultModel: 'claude-4-6-sonnet', models: ['openai-compatible/llama-3'] } });
    const now = Date.now();
    // A team of its own, so the claims below see only this file's runs.
    const team = await server.store.createTeam({ name: unique('compat'), maxConcurrentRuns: 100 }, now);
    const user = await server.store.createUser({ teamId: team.id, email: 'compat@localhost', displayName: 'Compat', role: 'admin' }, now);
    const minted = mintCredential(API_KEY_PREFIX);
    await server.store.createApiKey({ teamId: team.id, userId: user.id, name: 'compat', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
    key = minted.secret;
    worker = new ProtocolClient(server.url, server.workerSecret);
  });
  afterAll(async () => {
    await server?.close();
  });

  const call = async <T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const createRun = async (body: Record<string, unknown>): Promise<string> => {
    const res = await call<RunAgentResponse>('POST', '/api/v1/agent/runs', body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.run_id;
  };
  const getRun = async (id: string): Promise<RunItem> => (await call<RunItem>('GET', `/api/v1/agent/runs/${id}`)).body;
  /** Claims until `runId` comes; other runs of this file claimed meanwhile are kept for their own turn. */
  const claimed = new Map<string, ClaimedRun>();
  const claim = async (runId: string): Promise<ClaimedRun> => {
    for (let i = 0; i < 20; i++) {
      const found = claimed.get(runId);
      if (found) return found;
      const { runs } = await worker.claim({ worker_id: 'compat-worker', max_runs: 64, wait_ms: 0 });
      for (const run of runs) claimed.set(run.run_id, run);
    }
    throw new Error(`run ${runId} was never claimed`);
  };

  describe('model ids', () => {
    it("accepts Oz's catalog ids and auto, echoes them, and gives the worker provider/model", async () => {
      const cases: [string, string][] = [
        ['claude-4-6-opus-high', 'anthropic/claude-opus-4-6'],
        ['gpt-5-4-high', 'openai/gpt-5.4'],
        ['auto', 'anthropic/claude-sonnet-4-6'],
        ['openai/gpt-5', 'openai/gpt-5'],
      ];
      for (const [modelId, model] of cases) {
        const id = await createRun({ prompt: 'x', config: { model_id: modelId } });
        expect((await getRun(id)).agent_config.model_id).toBe(modelId);
        expect((await claim(id)).model_id).toBe(model);
      }
    });

    it('gives an oz run that names no model the default, and answers an unknown catalog id with 400 naming config.model_id and what is allowed', async () => {
      const id = await createRun({ prompt: 'x' });
      expect((await getRun(id)).agent_config.model_id).toBe('claude-4-6-sonnet');
      const unknown = await call<ProblemBody>('POST', '/api/v1/agent/runs', { prompt: 'x', config: { model_id: 'claude-9-opus' } });
      expect(unknown.status).toBe(400);
      expect(unknown.body).toMatchObject({ error_code: 'invalid_request', reason: 'config.model_id' });
      expect(unknown.body.detail).toContain('claude-4-6-opus-high');
      expect(unknown.body.detail).toContain('provider/model');
      const malformed = await call<ProblemBody>('POST', '/api/v1/agent/runs', { prompt: 'x', config: { model_id: 'Not A Model!' } });
      expect(malformed.status).toBe(400);
      expect(malformed.body.detail).toContain('config.model_id');
    });

    it('validates a schedule template the same way, naming agent_config.model_id', async () => {
      const bad = await call<ProblemBody>('POST', '/api/v1/agent/schedules', { name: unique('s'), cron_schedule: '0 3 * * *', prompt: 'x', agent_config: { model_id: 'gpt-99' } });
      expect(bad.status).toBe(400);
      expect(bad.body.reason).toBe('agent_config.model_id');
      const good = await call<ScheduleItem>('POST', '/api/v1/agent/schedules', {
        name: unique('s'),
        cron_schedule: '0 3 * * *',
        prompt: 'x',
        agent_config: { model_id: 'gpt-5-4-high' },
      });
      expect(good.status).toBe(201);
    });

    it('lists the catalog in the spec shape, then the configured provider/model ids, with the configured default', async () => {
      const res = await call<ListModelsResponse>('GET', '/api/v1/agent/models');
      expect(res.status).toBe(200);
      expect(res.body.default_model_id).toBe('claude-4-6-sonnet');
      expect(res.body.models).toContainEqual({
        id: 'claude-4-6-opus-high',
        display_name: expect.any(String),
        provider: 'ANTHROPIC',
        vision_supported: true,
        reasoning_level: 'high',
      });
      expect(res.body.models).toContainEqual(expect.objectContaining({ id: 'gpt-5-4-high', provider: 'OPENAI' }));
      expect(res.body.models).toContainEqual(expect.objectContaining({ id: 'openai-compatible/llama-3', provider: 'UNKNOWN' }));
    });
  });

  describe('RunItem', () => {
    it('has a session_link on this server, request_usage, and no trigger_url for a direct run', async () => {
      const id = await createRun({ prompt: 'x' });
      const run = await getRun(id);
      expect(run.session_link).toBe(`${server.url}/runs/${id}`);
      expect(run.request_usage).toEqual({});
      expect(run.trigger_url).toBeUndefined();
      expect(run.agent_skill).toBeUndefined();
    });

    it("gives a scheduled run its schedule's API URL as trigger_url", async () => {
      const schedule = await call<ScheduleItem>('POST', '/api/v1/agent/schedules', { name: unique('t'), cron_schedule: '0 3 * * *', prompt: 'x' });
      const fired = await call<RunAgentResponse>('POST', `/api/v1/agent/schedules/${schedule.body.id}/run-now`);
      expect(fired.status).toBe(200);
      expect((await getRun(fired.body.run_id)).trigger_url).toBe(`${server.url}/api/v1/agent/schedules/${schedule.body.id}`);
    });

    it('says is_sandbox_running only while a worker holds a live lease', async () => {
      const id = await createRun({ prompt: 'x' });
      expect((await getRun(id)).is_sandbox_running).toBe(false);
      await claim(id);
      expect((await getRun(id)).is_sandbox_running).toBe(true);
      await server.store.db
        .updateTable('runs')
        .set({ lease_expires_at: Date.now() - 1000 })
        .where('id', '=', id)
        .execute();
      expect((await getRun(id)).is_sandbox_running).toBe(false);
    });

    it('keeps BRANCH out of the spec artifacts (a strict oneOf decoder knows no BRANCH) and lists it under branches', async () => {
      const id = await createRun({ prompt: 'x' });
      const at = Date.now();
      await server.store.appendRunEvents(id, [
        { type: 'artifact', at, data: { artifact_type: 'BRANCH', data: { branch: 'oz/x', repository: 'https://github.com/o/r.git' } } },
        { type: 'artifact', at, data: { artifact_type: 'PULL_REQUEST', data: { url: 'https://github.com/o/r/pull/1', branch: 'oz/x' } } },
      ]);
      const run = await getRun(id);
      expect(run.artifacts.map((a) => a.artifact_type)).toEqual(['PULL_REQUEST']);
      expect(run.branches).toEqual([{ branch: 'oz/x', repository: 'https://github.com/o/r.git', created_at: expect.any(String) }]);
      const listed = await call<{ runs: RunItem[] }>('GET', '/api/v1/agent/runs?artifact_type=BRANCH');
      expect(listed.body.runs.map((r) => r.run_id)).toContain(id);
    });
  });

  describe('errors and SDK fields', () => {
    it('answers feature_not_available with 403, naming the SDK fields we do not implement', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ skill: 'owner/repo:skills/fix/SKILL.md' }, 'skill'],
        [{ prompt: 'x', images: [{ data: 'eA==', mime_type: 'image/png' }] }, 'images'],
        [{ prompt: 'x', mode: 'plan' }, 'mode'],
        [{ prompt: 'x', config: { runner_id: 'r1' } }, 'config.runner_id'],
      ];
      for (const [body, field] of cases) {
        const res = await call<ProblemBody>('POST', '/api/v1/agent/runs', body);
        expect(res.status, JSON.stringify(res.body)).toBe(403);
        expect(res.body).toMatchObject({ status: 403, error_code: 'feature_not_available', reason: field });
      }
    });

    it('accepts and ignores metadata, and still requires a prompt without a skill', async () => {
      await createRun({ prompt: 'x', metadata: { ticket: 'T-1' } });
      const res = await call<ProblemBody>('POST', '/api/v1/agent/runs', { title: 'no prompt' });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'invalid_request', reason: 'prompt' });
    });
  });

  describe('the claimed run', () => {
    it('names its parent run (OZ_PARENT_RUN_ID inside it)', async () => {
      const parent = await createRun({ prompt: 'parent' });
      const child = await createRun({ prompt: 'child', parent_run_id: parent });
      expect((await claim(child)).parent_run_id).toBe(parent);
      expect((await claim(parent)).parent_run_id).toBeNull();
    });
  });

  describe('harness-key secrets', () => {
    it('creates claude-api-key and codex-api-key secrets, base_url only on the codex one', async () => {
      const claude = await call<SecretItem>('POST', '/api/v1/secrets', {
        name: unique('CLAUDE').toUpperCase().replace(/-/g, '_'),
        value: 'sk-ant-0123456789',
        type: 'claude-api-key',
      });
      expect(claude.status).toBe(201);
      expect(claude.body).toMatchObject({ type: 'claude-api-key', variable: 'ANTHROPIC_API_KEY' });
      expect(claude.body.base_url).toBeUndefined();
      const codex = await call<SecretItem>('POST', '/api/v1/secrets', {
        name: unique('CODEX').toUpperCase().replace(/-/g, '_'),
        value: 'sk-codex-0123456789',
        type: 'codex-api-key',
        base_url: 'https://models.example.test/v1',
      });
      expect(codex.status).toBe(201);
      expect(codex.body).toMatchObject({ type: 'codex-api-key', base_url: 'https://models.example.test/v1' });
      const wrong = await call<ProblemBody>('POST', '/api/v1/secrets', {
        name: unique('RAW').toUpperCase().replace(/-/g, '_'),
        value: '0123456789',
        base_url: 'https://x.test/v1',
      });
      expect(wrong.status).toBe(400);
      expect(wrong.body.reason).toBe('base_url');
      // Redirecting a harness key, or turning it into a plain variable, takes the key itself.
      for (const patch of [{ type: 'raw-value' }, { base_url: 'https://elsewhere.example.test/v1' }]) {
        const refused = await call<ProblemBody>('PATCH', `/api/v1/secrets/${codex.body.name}`, patch);
        expect(refused.status, JSON.stringify(patch)).toBe(400);
        expect(refused.body.reason).toBe('value');
      }
      const withCredentials = await call<ProblemBody>('PATCH', `/api/v1/secrets/${codex.body.name}`, {
        value: 'sk-codex-0123456789',
        base_url: 'https://u:p@models.example.test/v1',
      });
      expect(withCredentials.status).toBe(400);
      expect(withCredentials.body.detail).toContain('must not contain a user name or password');
      const changed = await call<SecretItem>('PATCH', `/api/v1/secrets/${codex.body.name}`, { type: 'raw-value', value: 'sk-codex-0123456789' });
      expect(changed.status).toBe(200);
      expect(changed.body.base_url).toBeUndefined();
    });

    it("makes an attached key the harness's auth (never a variable), with the codex key's base URL", async () => {
      const claudeName = unique('CK').toUpperCase().replace(/-/g, '_');
      const codexName = unique('XK').toUpperCase().replace(/-/g, '_');
      await call('POST', '/api/v1/secrets', { name: claudeName, value: 'sk-ant-claude-value', type: 'claude-api-key' });
      await call('POST', '/api/v1/secrets', { name: codexName, value: 'sk-codex-the-value', type: 'codex-api-key', base_url: 'https://llm.example.test/v1' });
      const secrets = [claudeName, codexName];

      const claudeRun = await claim(await createRun({ prompt: 'x', config: { harness: { type: 'claude' }, secrets } }));
      expect(claudeRun.secrets).toEqual({ env: {}, setup_env: {}, unknown: [], harness_auth: 'sk-ant-claude-value' });

      const codexRun = await claim(await createRun({ prompt: 'x', config: { harness: { type: 'codex' }, secrets } }));
      expect(codexRun.secrets).toEqual({ env: {}, setup_env: {}, unknown: [], harness_auth: 'sk-codex-the-value', harness_auth_base_url: 'https://llm.example.test/v1' });

      // The built-in agent gets neither: they are keys of the CLI harnesses.
      const ozRun = await claim(await createRun({ prompt: 'x', config: { secrets } }));
      expect(ozRun.secrets).toEqual({ env: {}, setup_env: {}, unknown: [] });
    });
  });

  describe('environments and schedules', () => {
    it('honours sort_by=name and last_updated, and refuses another value', async () => {
      const names = [unique('zeta'), unique('alpha')];
      for (const name of names) expect((await call('POST', '/api/v1/agent/environments', { name })).status).toBe(201);
      const byName = await call<ListEnvironmentsResponse>('GET', '/api/v1/agent/environments?sort_by=name');
      const listed = byName.body.environments.map((e) => e.config.name);
      expect(listed).toEqual([...listed].sort());
      const byUpdate = await call<ListEnvironmentsResponse>('GET', '/api/v1/agent/environments?sort_by=last_updated');
      expect(byUpdate.body.environments[0]?.config.name).toBe(names[1]);
      expect((await call('GET', '/api/v1/agent/environments?sort_by=size')).status).toBe(400);
    });

    it("shows a schedule's environment resolved, as the spec's CloudEnvironmentConfig", async () => {
      const env = await call<{ uid: string }>('POST', '/api/v1/agent/environments', { name: unique('sched-env'), setup_commands: ['true'] });
      const schedule = await call<ScheduleItem>('POST', '/api/v1/agent/schedules', {
        name: unique('with-env'),
        cron_schedule: '0 3 * * *',
        prompt: 'x',
        agent_config: { environment_id: env.body.uid },
      });
      expect(schedule.status).toBe(201);
      expect(schedule.body.environment).toMatchObject({ name: expect.stringContaining('sched-env'), setup_commands: ['true'] });
      const bare = await call<ScheduleItem>('POST', '/api/v1/agent/schedules', { name: unique('no-env'), cron_schedule: '0 3 * * *', prompt: 'x' });
      expect(bare.body.environment).toBeUndefined();
    });
  });
});
