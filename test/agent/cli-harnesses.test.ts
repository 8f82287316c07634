import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { startModelServer, type ModelServer, type RecordedRequest, type ScriptedTurn } from '../support/model-server.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { executionEnded, sendFollowup } from '../support/followups.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const ANTHROPIC_KEY = `sk-ant-${randomBytes(8).toString('hex')}`;
const OPENAI_KEY = `sk-openai-${randomBytes(8).toString('hex')}`;
const TEST = 'out=$(sh greet.sh)\n[ "$out" = "Hello, Oz" ] && echo "test passed" || { echo "test failed: got $out"; exit 1; }\n';

/** The agent loop's requests carry tools; anything else a CLI asks on the side gets a short text. */
function loop(turns: ScriptedTurn[]) {
  return (req: RecordedRequest): ScriptedTurn | undefined => {
    const body = req.body as Json;
    if (!Array.isArray(body.tools) || body.tools.length === 0) return { text: 'ok' };
    return turns.shift();
  };
}

describe('the claude and codex harnesses run the real CLIs against the scripted model', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let appUrl: string;
  let envId: string;
  let anthropic: ModelServer;
  let openai: ModelServer;
  /** Where a codex-api-key secret's own base URL points. */
  let ownCodex: ModelServer;
  const claudeTurns: ScriptedTurn[] = [];
  const codexTurns: ScriptedTurn[] = [];

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-cli-harness-'));
    chmodSync(fixtures, 0o755);
    appUrl = makeBareRepo(fixtures, 'app', { 'greet.sh': 'echo "Hello"\n', 'test.sh': TEST });
    anthropic = await startModelServer({ protocol: 'anthropic', script: loop(claudeTurns) });
    openai = await startModelServer({ protocol: 'openai-responses', script: loop(codexTurns) });
    ownCodex = await startModelServer({ protocol: 'openai-responses', script: loop(codexTurns) });
    server = await startOzServer('sqlite', {
      env: {
        OZ_FILE_REPO_ROOTS: fixtures,
        OZ_TEAM_MAX_CONCURRENT_RUNS: '10',
        // Where the providers are; the keys come from the team's secrets only.
        ANTHROPIC_BASE_URL: anthropic.anthropicBaseUrl,
        OPENAI_BASE_URL: openai.openaiBaseUrl,
        // A harness key's base URL on loopback is refused unless the operator allows it.
        OZ_GIT_ALLOWED_HOSTS: '127.0.0.1',
      },
    });
    for (const [name, value, type] of [
      ['CLAUDE_KEY', ANTHROPIC_KEY, 'raw-value'],
      ['OPENAI', OPENAI_KEY, 'openai-api-key'],
    ]) {
      const res = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name, value, type } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'cli-env', repos: [{ url: appUrl }], secrets: ['OPENAI'] } });
    expect(env.status).toBe(201);
    envId = (env.body as { uid: string }).uid;
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await anthropic?.close();
      await openai?.close();
      await ownCodex?.close();
      rmSync(fixtures, { recursive: true, force: true });
    }
  });

  // A request the script did not foresee is a failure of the test, whichever test made it.
  afterEach(() => {
    expect(anthropic.failures, 'anthropic model server').toEqual([]);
    expect(openai.failures, 'openai model server').toEqual([]);
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
  const actions = async (id: string): Promise<Json[]> => {
    const res = await api(server, 'GET', `/api/v1/agent/runs/${id}/conversation`, { key: server.adminKey });
    const steps = (res.body as { steps: { messages: { role: string; content: Json[] }[] }[] }).steps;
    return steps.flatMap((s) => s.messages.flatMap((m) => m.content.map((b): Json => ({ role: m.role, ...b })))).filter((b) => b.name !== 'setup_command');
  };

  it('claude: Claude Code reads, edits and tests through the model proxy; SUCCEEDED, mapped, published, the key never in the sandbox', async () => {
    claudeTurns.push(
      { toolCalls: [{ name: 'Read', input: { file_path: '/workspace/app/greet.sh' } }], usage: { input: 50, output: 5 } },
      { toolCalls: [{ name: 'Edit', input: { file_path: '/workspace/app/greet.sh', old_string: 'Hello', new_string: 'Hello, Oz' } }], usage: { input: 60, output: 6 } },
      { toolCalls: [{ name: 'Bash', input: { command: 'sh test.sh; echo "key=[$ANTHROPIC_API_KEY]"', description: 'Run the tests' } }], usage: { input: 70, output: 7 } },
      { text: 'The greeting says Hello, Oz and the tests pass.', usage: { input: 80, output: 8 } },
    );
    const run = await runToEnd({ harness: { type: 'claude' }, model_id: 'anthropic/claude-sonnet-4-5', harness_auth_secrets: { claude_auth_secret_name: 'CLAUDE_KEY' } });
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    const id = String(run.run_id);
    expect(String((run.status_message as Json).message)).toBe(`The greeting says Hello, Oz and the tests pass.\nPushed branch oz/${id} to ${appUrl}.`);
    expect(git(join(fixtures, 'app.git'), 'show', `oz/${id}:greet.sh`)).toBe('echo "Hello, Oz"\n');
    expect(claudeTurns).toHaveLength(0);
    expect(anthropic.failures).toEqual([]);
    // The provider got the real key from the proxy; the CLI (and its Bash) only had the run's token.
    const loopRequests = anthropic.requests.filter((r) => Array.isArray((r.body as Json).tools));
    expect(loopRequests.length).toBe(4);
    for (const request of anthropic.requests) expect(request.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    const sent = JSON.stringify(loopRequests.map((r) => r.body));
    expect(sent).toContain('test passed');
    expect(sent).toMatch(/key=\[[0-9a-f]{48}\]/);
    expect(sent).not.toContain(ANTHROPIC_KEY);
    // The stream mapped into the conversation: each tool with its result, then the final words.
    const blocks = await actions(id);
    expect(blocks.filter((b) => b.type === 'action').map((b) => b.name)).toEqual(['Read', 'Edit', 'Bash']);
    const results = blocks.filter((b) => b.type === 'action_result');
    expect(results.map((b) => [b.name, b.state])).toEqual([
      ['Read', 'completed'],
      ['Edit', 'completed'],
      ['Bash', 'completed'],
    ]);
    expect(String((results[2]?.output as Json).text)).toContain('test passed');
    expect(blocks.some((b) => b.type === 'text' && b.text === 'The greeting says Hello, Oz and the tests pass.')).toBe(true);
    expect(run.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
    expect((run.usage as Json).output_tokens).toBeGreaterThan(0);
  });

  it('codex: Codex runs commands through a Responses provider at the proxy; SUCCEEDED, mapped, published', async () => {
    codexTurns.push(
      { toolCalls: [{ name: 'exec_command', input: { cmd: 'cat greet.sh' } }], usage: { input: 40, output: 4 } },
      {
        toolCalls: [{ name: 'exec_command', input: { cmd: 'sed -i "s/Hello/Hello, Oz/" greet.sh && sh test.sh; echo "key=[$OPENAI_API_KEY]"' } }],
        usage: { input: 50, output: 5 },
      },
      { text: 'Updated the greeting; tests pass.', usage: { input: 60, output: 6 } },
    );
    const run = await runToEnd({ harness: { type: 'codex' }, model_id: 'openai/gpt-5' });
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    const id = String(run.run_id);
    expect(String((run.status_message as Json).message)).toBe(`Updated the greeting; tests pass.\nPushed branch oz/${id} to ${appUrl}.`);
    expect(git(join(fixtures, 'app.git'), 'show', `oz/${id}:greet.sh`)).toBe('echo "Hello, Oz"\n');
    expect(codexTurns).toHaveLength(0);
    expect(openai.failures).toEqual([]);
    for (const request of openai.requests) expect(request.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    const sent = JSON.stringify(openai.requests.map((r) => r.body));
    expect(sent).toContain('test passed');
    expect(sent).toContain('key=[]');
    expect(sent).not.toContain(OPENAI_KEY);
    const blocks = await actions(id);
    const commands = blocks.filter((b) => b.type === 'action').map((b) => String((b.input as Json).command));
    expect(commands.some((c) => c.includes('cat greet.sh'))).toBe(true);
    expect(commands.some((c) => c.includes('sed -i'))).toBe(true);
    const results = blocks.filter((b) => b.type === 'action_result');
    expect(results.every((b) => b.state === 'completed')).toBe(true);
    expect(blocks.some((b) => b.type === 'text' && b.text === 'Updated the greeting; tests pass.')).toBe(true);
    expect(run.usage).toMatchObject({ input_tokens: 150, output_tokens: 15, steps: 1 });
  });

  it("codex with a codex-api-key secret: the proxy calls that key's own base URL, with that key", async () => {
    const value = 'sk-own-codex-key-0123456789';
    const created = await api(server, 'POST', '/api/v1/secrets', {
      key: server.adminKey,
      body: { name: 'OWN_CODEX', value, type: 'codex-api-key', base_url: ownCodex.openaiBaseUrl },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    codexTurns.push({ text: 'Nothing to change.', usage: { input: 10, output: 2 } });
    const before = openai.requests.length;
    const run = await runToEnd({ harness: { type: 'codex' }, model_id: 'openai/gpt-5', harness_auth_secrets: { codex_auth_secret_name: 'OWN_CODEX' } });
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect(openai.requests.length).toBe(before);
    expect(ownCodex.requests.length).toBeGreaterThan(0);
    for (const request of ownCodex.requests) expect(request.headers.authorization).toBe(`Bearer ${value}`);
  });

  it.each([
    ['claude', { harness: { type: 'claude' }, model_id: 'anthropic/claude-sonnet-4-5', harness_auth_secrets: { claude_auth_secret_name: 'CLAUDE_KEY' } }],
    ['codex', { harness: { type: 'codex' }, model_id: 'openai/gpt-5' }],
  ] as const)('%s continues its session across a follow-up: the second execution’s model request carries the first turn', async (name, config) => {
    const turns = name === 'claude' ? claudeTurns : codexTurns;
    const model = name === 'claude' ? anthropic : openai;
    const loopRequests = () => model.requests.filter((r) => Array.isArray((r.body as Json).tools));
    turns.push({ text: 'First answer: the marker is BLUE-HERON.', usage: { input: 10, output: 3 } });
    const run = await runToEnd(config);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    const id = String(run.run_id);
    const before = loopRequests().length;
    turns.push({ text: 'Second answer.', usage: { input: 12, output: 2 } });
    await sendFollowup(server, id, 'What was the marker?');
    const second = await executionEnded(server, id, 2, 90_000);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    const next = loopRequests().slice(before);
    expect(next.length).toBeGreaterThan(0);
    // The resumed session sent the first turn (the prompt and the answer) before the follow-up.
    const sent = JSON.stringify((next[0] as { body: unknown }).body);
    expect(sent).toContain('Make the greeting say');
    expect(sent).toContain('BLUE-HERON');
    expect(sent.indexOf('What was the marker?')).toBeGreaterThan(sent.indexOf('BLUE-HERON'));
  });

  it('a missing auth secret fails the run naming it; a CLI missing from the sandbox fails naming the fix', async () => {
    const cli = await runOz(['agent', 'run-cloud', '-p', 'x', '-e', envId, '--harness', 'claude', '--claude-auth-secret', 'NO_SUCH_SECRET', '--wait'], server.cliEnv);
    expect(cli.code).toBe(1);
    const missing = (
      await api(
        server,
        'GET',
        `/api/v1/agent/runs/${cli.stdout
          .trim()
          .split(/\s/)
          .find((w) => /^[0-9a-f-]{36}$/.test(w))}`,
        { key: server.adminKey },
      )
    ).body as Json;
    expect(missing.agent_config).toMatchObject({ harness: { type: 'claude' }, harness_auth_secrets: { claude_auth_secret_name: 'NO_SUCH_SECRET' } });
    expect(missing.state).toBe('FAILED');
    expect(missing.status_message).toMatchObject({ reason: 'harness_auth_secret_not_found' });
    expect(String((missing.status_message as Json).message)).toContain('NO_SUCH_SECRET');

    // A worker that provides no codex, and an environment whose setup did not install one.
    const bare = await startOzServer('sqlite', { env: { OZ_CODEX_BIN: 'off' } });
    try {
      const res = await api(bare, 'POST', '/api/v1/agent/runs', { key: bare.adminKey, body: { prompt: 'x', config: { harness: { type: 'codex' } } } });
      const id = (res.body as { run_id: string }).run_id;
      const run = await until(
        `run ${id}`,
        async () => {
          const body = (await api(bare, 'GET', `/api/v1/agent/runs/${id}`, { key: bare.adminKey })).body as Json;
          return TERMINAL.includes(String(body.state)) ? body : null;
        },
        90_000,
      );
      expect(run.state).toBe('FAILED');
      expect(run.status_message).toMatchObject({ reason: 'codex_cli_missing' });
      expect(String((run.status_message as Json).message)).toContain('npm install -g @openai/codex');
    } finally {
      expect(await bare.stop()).toBe(0);
    }
  });
});
