import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { startModelServer, type ModelServer, type RecordedRequest, type ScriptedTurn } from '../support/model-server.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { engineReachable } from '../support/container-engine.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const ANTHROPIC_KEY = `sk-ant-${randomBytes(8).toString('hex')}`;
const TEST = 'out=$(sh greet.sh)\n[ "$out" = "Hello, Oz" ] && echo "test passed" || { echo "test failed: got $out"; exit 1; }\n';

/**
 * The harnesses on the docker backend (docs/sandboxes.md "The docker
 * backend"): the built-in agent and Claude Code against the scripted model,
 * in containers, reaching the model through the run's support socket as on
 * bwrap, their work committed and pushed by the platform.
 */
describe.skipIf(!engineReachable())('the harnesses on the docker backend', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let envId: string;
  let appUrl = '';
  let model: ModelServer;
  const turns: ScriptedTurn[] = [];

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-docker-harness-'));
    chmodSync(fixtures, 0o755);
    appUrl = makeBareRepo(fixtures, 'app', { 'greet.sh': 'echo "Hello"\n', 'test.sh': TEST });
    // The agent loops' requests carry tools; anything a CLI asks on the side gets a short text.
    model = await startModelServer({
      protocol: 'anthropic',
      script: (req: RecordedRequest) => {
        const body = req.body as Json;
        if (!Array.isArray(body.tools) || body.tools.length === 0) return { text: 'ok' };
        return turns.shift();
      },
    });
    server = await startOzServer('sqlite', {
      args: ['--backend', 'docker'],
      env: {
        OZ_FILE_REPO_ROOTS: fixtures,
        ANTHROPIC_BASE_URL: model.anthropicBaseUrl,
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        OZ_GIT_ALLOWED_HOSTS: '127.0.0.1',
      },
    });
    const secret = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'CLAUDE_KEY', value: ANTHROPIC_KEY } });
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'docker-env', repos: [{ url: appUrl }] } });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    envId = (env.body as { uid: string }).uid;
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await model?.close();
      rmSync(fixtures, { recursive: true, force: true });
    }
  });

  const runToEnd = async (config: Json): Promise<Json> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: 'Make the greeting say "Hello, Oz" and keep the tests passing.', config: { environment_id: envId, ...config } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    return until(
      `run ${id}`,
      async () => {
        const run = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
        return TERMINAL.includes(String(run.state)) ? run : null;
      },
      90_000,
    );
  };

  it('the built-in agent edits, tests and finishes in a container; its change is pushed as the run branch', async () => {
    turns.push(
      { toolCalls: [{ name: 'edit_file', input: { path: 'greet.sh', old_string: 'Hello', new_string: 'Hello, Oz' } }], usage: { input: 120, output: 20 } },
      { toolCalls: [{ name: 'bash', input: { command: 'sh test.sh && cat /proc/1/cmdline | tr "\\0" " "' } }], usage: { input: 140, output: 30 } },
      { toolCalls: [{ name: 'finish', input: { summary: 'The greeting now says Hello, Oz.', success: true } }], usage: { input: 180, output: 50 } },
    );
    const run = await runToEnd({ harness: { type: 'oz' }, model_id: 'anthropic/claude-scripted' });
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect(git(join(fixtures, 'app.git'), 'show', `oz/${String(run.run_id)}:greet.sh`)).toBe('echo "Hello, Oz"\n');
    // The bash tool ran in the container: its pid 1 is the container's init.
    const bash = model.requests.map((r) => JSON.stringify(r.body)).find((body) => body.includes('test passed'));
    expect(bash).toContain('/oz/bin/reaper');
  });

  it('claude: Claude Code reads, edits and tests through the model proxy in a container; SUCCEEDED and published', async () => {
    turns.push(
      { toolCalls: [{ name: 'Read', input: { file_path: '/workspace/app/greet.sh' } }], usage: { input: 50, output: 5 } },
      { toolCalls: [{ name: 'Edit', input: { file_path: '/workspace/app/greet.sh', old_string: 'Hello', new_string: 'Hello, Oz' } }], usage: { input: 60, output: 6 } },
      { toolCalls: [{ name: 'Bash', input: { command: 'sh test.sh; echo "key=[$ANTHROPIC_API_KEY]"', description: 'Run the tests' } }], usage: { input: 70, output: 7 } },
      { text: 'The greeting says Hello, Oz and the tests pass.', usage: { input: 80, output: 8 } },
    );
    const run = await runToEnd({ harness: { type: 'claude' }, model_id: 'anthropic/claude-sonnet-4-5', harness_auth_secrets: { claude_auth_secret_name: 'CLAUDE_KEY' } });
    const conversation = (await api(server, 'GET', `/api/v1/agent/runs/${String(run.run_id)}/conversation`, { key: server.adminKey })).body;
    expect(run.state, JSON.stringify(conversation)).toBe('SUCCEEDED');
    expect(String((run.status_message as Json).message), JSON.stringify(conversation)).toContain('Pushed branch');
    expect(git(join(fixtures, 'app.git'), 'show', `oz/${String(run.run_id)}:greet.sh`)).toBe('echo "Hello, Oz"\n');
    expect(turns).toHaveLength(0);
    // The provider got the real key from the proxy; Claude Code in the container never had it.
    const seen = model.requests.map((r) => JSON.stringify(r.body)).join('\n');
    expect(seen).toContain('test passed');
    expect(seen).not.toContain(ANTHROPIC_KEY);
    expect(model.failures).toEqual([]);
  });
});
