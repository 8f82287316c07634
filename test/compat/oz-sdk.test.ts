import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OzAPI, { APIError, AuthenticationError, BadRequestError, NotFoundError } from 'oz-agent-sdk';
import type { AgentRunParams, AmbientAgentConfig, RunItem, RunState, ScheduledAgentItem } from 'oz-agent-sdk/resources/agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { readConformance } from './conformance-table.js';

/**
 * The official TypeScript SDK of Oz against a real `oz server` (SQLite, its
 * embedded worker): what an Oz user's code does must work unchanged here.
 * Runs use the `command` harness (the prompt is a shell script) in a
 * network-off environment, so they finish in a second without a model.
 */

const TERMINAL: readonly string[] = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
/** The order a run moves through; a poll may miss states but never sees them out of order. */
const LIFECYCLE: readonly string[] = ['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS', 'SUCCEEDED'];
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The model ids the spec's own examples use: accepted whatever the catalog holds (the command harness calls no model). */
const SPEC_MODEL_IDS = ['claude-4-6-opus-high', 'gpt-5-4-high', 'auto'];

/** `config` as we send it: the SDK's AmbientAgentConfig lacks our `harness` (a variable, not a literal, so TypeScript lets the extra field through). */
function commandConfig(environmentId: string, extra: AmbientAgentConfig = {}): AmbientAgentConfig {
  const config: AmbientAgentConfig & { harness: { type: 'command' } } = { ...extra, environment_id: environmentId, harness: { type: 'command' } };
  return config;
}

describe('the official Oz SDK (oz-agent-sdk) against oz server', () => {
  let server: OzServerHandle;
  let client: OzAPI;
  let envId: string;
  let fixtures: string;
  let repoUrl: string;

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-sdk-'));
    // Searchable by the sandboxes' uids, which clone the repository from here.
    chmodSync(fixtures, 0o755);
    repoUrl = makeBareRepo(fixtures, 'app', { 'greet.sh': 'echo "Hello"\n' });
    server = await startOzServer('sqlite', {
      env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '10', OZ_FILE_REPO_ROOTS: fixtures, OZ_GIT_AUTHOR_NAME: 'Oz Test', OZ_GIT_AUTHOR_EMAIL: 'oz-test@example.test' },
    });
    // Environments are not in the SDK (alpha.8): made through the API.
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: `sdk-${randomBytes(3).toString('hex')}`, network: 'off' } });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    envId = (env.body as { uid: string }).uid;
    // No retries: a failure is the server's answer, not the SDK's third attempt at it.
    client = new OzAPI({ apiKey: server.adminKey, baseURL: `${server.url}/api/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      if (fixtures) rmSync(fixtures, { recursive: true, force: true });
    }
  });

  /** Poll with runs.retrieve until the run is terminal; returns the last RunItem and every state seen. */
  async function settle(runId: string, timeoutMs = 30_000): Promise<{ run: RunItem; seen: string[] }> {
    const seen: string[] = [];
    const run = await until(
      `run ${runId}`,
      async () => {
        const item = await client.agent.runs.retrieve(runId);
        if (seen.at(-1) !== item.state) seen.push(item.state);
        return TERMINAL.includes(item.state) ? item : null;
      },
      timeoutMs,
    );
    return { run, seen };
  }

  const start = async (prompt: string, params: Omit<AgentRunParams, 'prompt'> = {}): Promise<string> => {
    const created = await client.agent.run({ prompt, ...params, config: params.config ?? commandConfig(envId) });
    return created.run_id;
  };

  it('agent.run creates a run; runs.retrieve returns its RunItem through its states to SUCCEEDED', async () => {
    const created = await client.agent.run({ prompt: 'echo "hello from the SDK"', title: 'SDK run', config: commandConfig(envId, { name: 'sdk-basic' }) });
    expect(created.run_id).toMatch(UUID);
    expect(created.task_id).toBe(created.run_id);
    // The embedded worker may claim the run before the create's answer is read back.
    expect(['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS'] satisfies RunState[]).toContain(created.state);

    const { run, seen } = await settle(created.run_id);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    // Each state seen comes later in the lifecycle than the one before it.
    const order = seen.map((state) => LIFECYCLE.indexOf(state));
    expect(order.every((index) => index >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe('SUCCEEDED');

    expect(run).toMatchObject({
      run_id: created.run_id,
      task_id: created.run_id,
      title: 'SDK run',
      prompt: 'echo "hello from the SDK"',
      source: 'API',
      agent_config: { environment_id: envId, name: 'sdk-basic' },
      artifacts: [],
      is_sandbox_running: false,
      scope: { type: 'Team' },
    });
    expect(run.created_at).toMatch(RFC3339);
    expect(run.updated_at).toMatch(RFC3339);
    expect(run.started_at).toMatch(RFC3339);
    expect(Date.parse(run.updated_at)).toBeGreaterThanOrEqual(Date.parse(run.created_at));
    expect(run.creator?.uid).toEqual(expect.any(String));
  });

  it.each(SPEC_MODEL_IDS)('agent.run accepts the spec example model id %s', async (modelId) => {
    const created = await client.agent.run({ prompt: 'true', config: commandConfig(envId, { model_id: modelId }) });
    expect(created.run_id).toMatch(UUID);
    const { run } = await settle(created.run_id);
    expect(run.agent_config?.model_id).toBe(modelId);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
  });

  it('runs.list filters (name, state, source, environment, model, q) and pages with its cursor', async () => {
    const name = `sdk-list-${randomBytes(3).toString('hex')}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await start(`echo page ${i}`, { title: `${name} run ${i}`, config: commandConfig(envId, { name, model_id: 'auto' }) }));
    for (const id of ids) expect((await settle(id)).run.state).toBe('SUCCEEDED');

    // The SDK has no auto-pagination for runs.list (alpha.8): page_info.next_cursor goes back as `cursor`.
    const pages: RunItem[][] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await client.agent.runs.list({ name, limit: 2, ...(cursor !== undefined ? { cursor } : {}) });
      pages.push(page.runs);
      expect(typeof page.page_info.has_next_page).toBe('boolean');
      if (!page.page_info.has_next_page) {
        expect(page.page_info.next_cursor ?? undefined).toBeUndefined();
        break;
      }
      expect(page.page_info.next_cursor).toEqual(expect.any(String));
      cursor = page.page_info.next_cursor;
      expect(pages.length).toBeLessThan(5);
    }
    expect(pages.map((page) => page.length)).toEqual([2, 1]);
    expect(
      pages
        .flat()
        .map((run) => run.run_id)
        .sort(),
    ).toEqual([...ids].sort());

    const only = async (params: Parameters<typeof client.agent.runs.list>[0]): Promise<string[]> =>
      (await client.agent.runs.list({ name, limit: 50, ...params })).runs.map((run) => run.run_id).sort();
    // The SDK sends an array as a repeated parameter (state=A&state=B).
    expect(await only({ state: ['SUCCEEDED', 'FAILED'] })).toEqual([...ids].sort());
    expect(await only({ state: ['CANCELLED'] })).toEqual([]);
    expect(await only({ source: 'API' })).toEqual([...ids].sort());
    expect(await only({ source: 'CLI' })).toEqual([]);
    expect(await only({ environment_id: envId })).toEqual([...ids].sort());
    expect(await only({ model_id: 'auto' })).toEqual([...ids].sort());
    expect(await only({ model_id: 'gpt-5-4-high' })).toEqual([]);
    expect(await only({ q: `${name} run 1` })).toEqual([ids[1]]);
    expect(await only({ created_after: new Date(Date.now() + 60_000).toISOString() })).toEqual([]);
  });

  it('runs.cancel cancels a running run and answers its id; a second cancel is a BadRequestError', async () => {
    const id = await start('sleep 60');
    await until(`run ${id} in progress`, async () => (await client.agent.runs.retrieve(id)).state === 'INPROGRESS');
    const answer = await client.agent.runs.cancel(id);
    expect(answer).toBe(id);
    const { run } = await settle(id);
    expect(run.state).toBe('CANCELLED');
    const again = await client.agent.runs.cancel(id).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(BadRequestError);
    expect((again as BadRequestError).error).toMatchObject({ error_code: 'invalid_request' });
  });

  it('schedules: create, retrieve, update, list, pause, resume, delete', async () => {
    const name = `sdk-schedule-${randomBytes(3).toString('hex')}`;
    const created: ScheduledAgentItem = await client.agent.schedules.create({
      name,
      cron_schedule: '0 9 * * 1',
      prompt: 'echo scheduled',
      agent_config: commandConfig(envId, { model_id: 'auto' }),
      enabled: true,
    });
    expect(created).toMatchObject({ name, cron_schedule: '0 9 * * 1', prompt: 'echo scheduled', enabled: true, agent_config: { environment_id: envId, model_id: 'auto' } });
    expect(created.id).toEqual(expect.any(String));
    expect(created.created_at).toMatch(RFC3339);
    expect(created.updated_at).toMatch(RFC3339);
    expect(created.history?.next_run).toMatch(RFC3339);
    expect(created.scope?.type).toBe('Team');

    expect(await client.agent.schedules.retrieve(created.id)).toMatchObject({ id: created.id, name, enabled: true });

    const updated = await client.agent.schedules.update(created.id, {
      name: `${name}-renamed`,
      cron_schedule: '30 8 * * *',
      prompt: 'echo renamed',
      enabled: true,
      agent_config: commandConfig(envId),
    });
    expect(updated).toMatchObject({ id: created.id, name: `${name}-renamed`, cron_schedule: '30 8 * * *', prompt: 'echo renamed', enabled: true });

    const listed = await client.agent.schedules.list();
    expect(listed.schedules.find((s) => s.id === created.id)).toMatchObject({ name: `${name}-renamed` });

    expect(await client.agent.schedules.pause(created.id)).toMatchObject({ id: created.id, enabled: false });
    expect(await client.agent.schedules.retrieve(created.id)).toMatchObject({ enabled: false });
    expect(await client.agent.schedules.resume(created.id)).toMatchObject({ id: created.id, enabled: true });

    expect(await client.agent.schedules.delete(created.id)).toEqual({ success: true });
    await expect(client.agent.schedules.retrieve(created.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await client.agent.schedules.list()).schedules.map((s) => s.id)).not.toContain(created.id);
  });

  it('agent.list answers as the conformance table says', async () => {
    const row = readConformance().operations.find((op) => op.method === 'GET' && op.path === '/agent');
    if (row?.status === 'feature_not_available') {
      const error = await client.agent.list().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).error).toMatchObject({ error_code: 'feature_not_available' });
    } else {
      const listed = await client.agent.list();
      expect(Array.isArray(listed.agents)).toBe(true);
      for (const agent of listed.agents) expect(agent).toMatchObject({ name: expect.any(String), variants: expect.any(Array) });
    }
  });

  it('an unknown run is the SDK’s NotFoundError; a bad key is its AuthenticationError', async () => {
    const missing = await client.agent.runs.retrieve(randomUUID()).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).status).toBe(404);
    expect((missing as NotFoundError).error).toMatchObject({ error_code: 'resource_not_found' });
    await expect(client.agent.runs.cancel(randomUUID())).rejects.toBeInstanceOf(NotFoundError);

    const stranger = new OzAPI({ apiKey: `oz_${randomBytes(16).toString('hex')}`, baseURL: `${server.url}/api/v1`, maxRetries: 0 });
    const refused = await stranger.agent.runs.list().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect((refused as AuthenticationError).status).toBe(401);
    await expect(stranger.agent.run({ prompt: 'true' })).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('a run that pushes a branch decodes as a RunItem whose artifacts are all of types the SDK knows', async () => {
    const env = await api(server, 'POST', '/api/v1/agent/environments', {
      key: server.adminKey,
      body: { name: `sdk-repo-${randomBytes(3).toString('hex')}`, network: 'off', repos: [{ url: repoUrl }] },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    const id = await start('sed -i "s/Hello/Hello, SDK/" greet.sh', { config: commandConfig((env.body as { uid: string }).uid) });
    const { run } = await settle(id, 60_000);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    // The SDK's ArtifactItem is PLAN | PULL_REQUEST. Stainless SDKs do not validate responses (the parsed JSON is returned as it came),
    // so another type would not throw, but typed code switching on artifact_type would never see it: the pushed branch is our `branches`.
    for (const artifact of run.artifacts ?? []) expect(['PLAN', 'PULL_REQUEST']).toContain(artifact.artifact_type);
    const branches = (run as RunItem & { branches?: unknown }).branches;
    expect(branches, JSON.stringify(run)).toEqual([{ branch: `oz/${id}`, repository: repoUrl, created_at: expect.stringMatching(RFC3339) }]);
    const listed = await client.agent.runs.list({ limit: 50 });
    expect(listed.runs.find((r) => r.run_id === id)).toMatchObject({ artifacts: run.artifacts ?? [], branches });
  });
});
