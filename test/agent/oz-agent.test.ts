import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { startModelServer, type ModelProtocol, type ModelServer, type ScriptedTurn } from '../support/model-server.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const SECRET = `agent-secret-${randomBytes(6).toString('hex')}`;

const GREET = 'echo "Hello"\n';
const TEST = 'out=$(sh greet.sh)\n[ "$out" = "Hello, Oz" ] && echo "test passed" || { echo "test failed: got $out"; exit 1; }\n';
const EXPECTED_DIFF = ['--- a/greet.sh', '+++ b/greet.sh', '@@ -1 +1 @@', '-echo "Hello"', '+echo "Hello, Oz"'];

const MODELS: Record<ModelProtocol, string> = {
  anthropic: 'anthropic/claude-scripted',
  'openai-responses': 'openai/gpt-scripted',
  'openai-chat': 'openai-compatible/local-scripted',
};

/** The happy path: read, edit, run the tests, look at the diff, finish; paths relative to the repository, where the tools start. */
function editScript(): ScriptedTurn[] {
  return [
    { text: 'Let me look at the greeting.', toolCalls: [{ name: 'read_file', input: { path: 'greet.sh' } }], usage: { input: 100, output: 10 } },
    { toolCalls: [{ name: 'edit_file', input: { path: 'greet.sh', old_string: 'Hello', new_string: 'Hello, Oz' } }], usage: { input: 120, output: 20 } },
    { toolCalls: [{ name: 'bash', input: { command: 'sh test.sh' } }], usage: { input: 140, output: 30 } },
    { toolCalls: [{ name: 'bash', input: { command: 'git status --porcelain && git diff -U0 | grep -v "^index\\|^diff"' } }], usage: { input: 160, output: 40 } },
    { toolCalls: [{ name: 'finish', input: { summary: 'The greeting now says Hello, Oz; the tests pass.', success: true } }], usage: { input: 180, output: 50 } },
  ];
}

describe('the built-in oz agent against a scripted model', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let envId: string;
  let appUrl: string;
  const models = {} as Record<ModelProtocol, ModelServer>;
  /** What the model servers answer next: each test sets its own. */
  const turns: Record<ModelProtocol, ScriptedTurn[]> = { anthropic: [], 'openai-responses': [], 'openai-chat': [] };
  let repeat: ScriptedTurn | null = null;

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-agent-'));
    chmodSync(fixtures, 0o755);
    appUrl = makeBareRepo(fixtures, 'app', { 'greet.sh': GREET, 'test.sh': TEST, 'README.md': '# app\nSay hello.\n' });
    for (const protocol of Object.keys(turns) as ModelProtocol[]) {
      models[protocol] = await startModelServer({ protocol, script: () => turns[protocol].shift() ?? repeat ?? undefined });
    }
    server = await startOzServer('sqlite', {
      env: {
        OZ_FILE_REPO_ROOTS: fixtures,
        OZ_TEAM_MAX_CONCURRENT_RUNS: '10',
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: models.anthropic.anthropicBaseUrl,
        OPENAI_API_KEY: 'test-openai-key',
        OPENAI_BASE_URL: models['openai-responses'].openaiBaseUrl,
        OZ_OPENAI_COMPATIBLE_BASE_URL: models['openai-chat'].openaiBaseUrl,
        OZ_MODEL_MAX_RETRIES: '2',
      },
    });
    const secret = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'API_TOKEN', value: SECRET } });
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
    const env = await api(server, 'POST', '/api/v1/agent/environments', {
      key: server.adminKey,
      // In the workspace, not /tmp: later runs of this environment start warm, from a snapshot of the workspace.
      body: { name: 'agent-env', repos: [{ url: appUrl }], setup_commands: ['echo "setup ran" > /workspace/.setup-marker'], secrets: ['API_TOKEN'] },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    envId = (env.body as { uid: string }).uid;
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await Promise.all(Object.values(models).map((m) => m.close()));
      rmSync(fixtures, { recursive: true, force: true });
    }
  });
  beforeEach(() => {
    for (const protocol of Object.keys(turns) as ModelProtocol[]) {
      turns[protocol] = [];
      models[protocol].requests.length = 0;
      models[protocol].failures.length = 0;
    }
    repeat = null;
  });
  // A request the script did not foresee is a failure of the test, whichever test made it.
  afterEach(() => {
    for (const protocol of Object.keys(turns) as ModelProtocol[]) expect(models[protocol].failures, `${protocol} model server`).toEqual([]);
  });

  const start = async (config: Json, prompt = 'Make the greeting say "Hello, Oz" and keep the tests passing.'): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt, config: { environment_id: envId, ...config } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { run_id: string }).run_id;
  };
  const finished = (id: string): Promise<Json> =>
    until(`run ${id} to end`, async () => {
      const run = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(run.state)) ? run : null;
    });
  const conversation = async (id: string): Promise<Json[]> => {
    const res = await api(server, 'GET', `/api/v1/agent/runs/${id}/conversation`, { key: server.adminKey });
    expect(res.status).toBe(200);
    const steps = (res.body as { steps: { messages: { role: string; content: Json[] }[] }[] }).steps;
    return steps.flatMap((s) => s.messages.flatMap((m) => m.content.map((block) => ({ role: m.role, ...block }))));
  };

  describe.each(Object.keys(MODELS) as ModelProtocol[])('on the %s protocol', (protocol) => {
    it('reads a file, edits it, runs the tests and finishes: SUCCEEDED with exactly that edit, every call in order, and the usage', async () => {
      turns[protocol] = editScript();
      const id = await start({ model_id: MODELS[protocol], harness: { type: 'oz' } });
      const run = await finished(id);
      expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
      // The summary, then what publishing did: the edit is on the run's branch in the repository.
      expect((run.status_message as Json).message).toBe(`The greeting now says Hello, Oz; the tests pass.\nPushed branch oz/${id} to ${appUrl}.`);
      expect(run.usage).toEqual({ input_tokens: 700, output_tokens: 150, steps: 5 });
      expect(models[protocol].failures).toEqual([]);
      expect(models[protocol].requests).toHaveLength(5);

      const blocks = await conversation(id);
      const actions = blocks.filter((b) => b.type === 'action' && b.name !== 'setup_command').map((b) => [b.name, b.input]);
      expect(actions).toEqual(editScript().flatMap((t) => ('toolCalls' in t ? (t.toolCalls ?? []).map((c) => [c.name, c.input]) : [])));
      const results = blocks.filter((b) => b.type === 'action_result' && b.name !== 'setup_command');
      expect(results.map((b) => b.state)).toEqual(['completed', 'completed', 'completed', 'completed', 'completed']);
      const texts = results.map((b) => String((b.output as Json).text));
      expect(texts[0]).toMatch(/^\s+1\techo "Hello"$/);
      expect(texts[1]).toBe('Edited greet.sh.');
      expect(texts[2]).toBe('test passed\n[exit code 0]');
      // The workspace holds exactly the scripted edit: one file changed, one line.
      expect(texts[3]).toBe([' M greet.sh', ...EXPECTED_DIFF, '[exit code 0]'].join('\n'));
      // Each call is followed by its result; the setup came first; the model's words are there.
      const order = blocks.map((b) => `${String(b.type)}:${String(b.name ?? '')}`);
      expect(order.indexOf('action:setup_command')).toBeLessThan(order.indexOf('action:read_file'));
      expect(order.indexOf('action:read_file')).toBe(order.indexOf('action_result:read_file') - 1);
      expect(blocks.some((b) => b.role === 'assistant' && b.type === 'text' && b.text === 'Let me look at the greeting.')).toBe(true);
      // The model saw the file and the test output through its protocol.
      const sent = JSON.stringify(models[protocol].requests[1]?.body);
      expect(sent).toContain('echo \\"Hello\\"');
      expect(JSON.stringify(models[protocol].requests[3]?.body)).toContain('test passed');
    });
  });

  it('the tools start in the repository: a relative write_file is published; a file outside it is named in the status', async () => {
    turns.anthropic = [
      { toolCalls: [{ name: 'write_file', input: { path: 'NOTES.md', content: 'Written by Oz.\n' } }] },
      { toolCalls: [{ name: 'write_file', input: { path: '/workspace/scratch.txt', content: 'not in the repository\n' } }] },
      { toolCalls: [{ name: 'bash', input: { command: 'pwd' } }] },
      { toolCalls: [{ name: 'finish', input: { summary: 'Added NOTES.md.', success: true } }] },
    ];
    const id = await start({ model_id: MODELS.anthropic }, 'Add a NOTES.md.');
    const run = await finished(id);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect((run.status_message as Json).message).toBe(`Added NOTES.md.\nPushed branch oz/${id} to ${appUrl}.\nChanges outside the repository were not published: scratch.txt.`);
    expect(git(join(fixtures, 'app.git'), 'show', `oz/${id}:NOTES.md`)).toBe('Written by Oz.\n');
    expect(git(join(fixtures, 'app.git'), 'diff', '--name-only', 'main', `oz/${id}`).trim()).toBe('NOTES.md');
    const results = (await conversation(id)).filter((b) => b.type === 'action_result' && b.name !== 'setup_command');
    expect(String((results[2]?.output as Json).text)).toBe('/workspace/app\n[exit code 0]');
    // The model was told where it is, and where the repository is.
    const sent = JSON.stringify(models.anthropic.requests[0]?.body);
    expect(sent).toContain('Your working directory is /workspace/app, the checkout of this run');
    expect(sent).toContain('Run a bash command in /workspace/app.');
  });

  it('a model that keeps calling tools hits the step budget: FAILED budget_exceeded naming it', async () => {
    repeat = { toolCalls: [{ name: 'bash', input: { command: 'echo again' } }], usage: { input: 10, output: 1 } };
    const id = await start({ model_id: MODELS['openai-responses'], max_steps: 3 });
    const run = await finished(id);
    expect(run.state).toBe('FAILED');
    expect(run.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'step_budget_exceeded' });
    expect(String((run.status_message as Json).message)).toContain('step budget (3 steps)');
    expect(run.usage).toEqual({ input_tokens: 30, output_tokens: 3, steps: 3 });
    expect(models['openai-responses'].requests).toHaveLength(3);
  });

  it('a token budget ends the run the same way', async () => {
    repeat = { toolCalls: [{ name: 'bash', input: { command: 'true' } }], usage: { input: 900, output: 200 } };
    const run = await finished(await start({ model_id: MODELS.anthropic, max_tokens: 2000 }));
    expect(run.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'token_budget_exceeded' });
    expect(run.usage).toEqual({ input_tokens: 1800, output_tokens: 400, steps: 2 });
  });

  it('a provider answering 500 ends ERROR model_unavailable after the SDK retries, quickly', async () => {
    repeat = { status: 500 };
    const startedAt = Date.now();
    const run = await finished(await start({ model_id: MODELS.anthropic }));
    expect(run.state).toBe('ERROR');
    expect(run.status_message).toMatchObject({ error_code: 'resource_unavailable', reason: 'model_unavailable' });
    expect(String((run.status_message as Json).message)).toContain('after 3 attempts');
    expect(models.anthropic.requests).toHaveLength(3);
    console.log(`500s: ERROR after ${Date.now() - startedAt} ms`);
  });

  it('bad tool input and a non-unique edit go back to the model as errors, and the run goes on', async () => {
    turns['openai-chat'] = [
      { toolCalls: [{ name: 'edit_file', input: { path: 'greet.sh' } }] },
      { toolCalls: [{ name: 'edit_file', input: { path: 'README.md', old_string: 'l', new_string: 'L' } }] },
      { toolCalls: [{ name: 'read_file', input: { path: 'missing.txt' } }] },
      { text: 'Nothing to change after all.' },
    ];
    const id = await start({ model_id: MODELS['openai-chat'] });
    const run = await finished(id);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect((run.status_message as Json).message).toBe('Nothing to change after all.\nNo changes in app: nothing was published.');
    const results = (await conversation(id)).filter((b) => b.type === 'action_result' && b.name !== 'setup_command');
    expect(results.map((b) => b.state)).toEqual(['failed', 'failed', 'failed']);
    const texts = results.map((b) => String((b.output as Json).text));
    expect(texts[0]).toMatch(/old_string|new_string|input/i);
    expect(texts[1]).toContain('old_string matches 2 times in README.md');
    expect(texts[2]).toContain('No such file');
    // What the model was sent back says the same.
    expect(JSON.stringify(models['openai-chat'].requests[2]?.body)).toContain('old_string matches 2 times');
  });

  it('a sandbox that dies under a tool ends the run ERROR sandbox_lost; the model is not asked to cope', async () => {
    turns.anthropic = [{ toolCalls: [{ name: 'bash', input: { command: 'kill -9 $PPID; sleep 5' } }] }];
    const run = await finished(await start({ model_id: MODELS.anthropic }));
    expect(run.state).toBe('ERROR');
    expect(run.status_message).toMatchObject({ error_code: 'resource_unavailable', reason: 'sandbox_lost' });
    expect(models.anthropic.requests).toHaveLength(1);
  });

  it('a secret printed by a tool reaches neither the model nor the conversation', async () => {
    turns.anthropic = [
      { toolCalls: [{ name: 'bash', input: { command: 'echo "token=$API_TOKEN"; cat /workspace/.setup-marker' } }] },
      { toolCalls: [{ name: 'finish', input: { summary: 'Done.', success: true } }] },
    ];
    const id = await start({ model_id: MODELS.anthropic });
    expect((await finished(id)).state).toBe('SUCCEEDED');
    const sent = JSON.stringify(models.anthropic.requests[1]?.body);
    expect(sent).toContain('setup ran');
    expect(sent).toContain('token=');
    expect(sent).not.toContain(SECRET);
    expect(JSON.stringify(await conversation(id))).not.toContain(SECRET);
  });

  it('agent-reported failure, a missing model, and harness selection from the CLI', async () => {
    turns['openai-responses'] = [{ toolCalls: [{ name: 'finish', input: { summary: 'The tests cannot pass.', success: false } }] }];
    const failed = await finished(await start({ model_id: MODELS['openai-responses'] }));
    expect(failed.state).toBe('FAILED');
    expect(failed.status_message).toMatchObject({ message: 'The tests cannot pass.', reason: 'agent_reported_failure' });

    // No model named and no default on this server.
    const none = await finished(await start({ harness: { type: 'oz' } }));
    expect(none.state).toBe('FAILED');
    expect(none.status_message).toMatchObject({ error_code: 'integration_not_configured', reason: 'model_not_configured' });
    expect(String((none.status_message as Json).message)).toContain('OZ_DEFAULT_MODEL');

    // The CLI: --harness oz with --model, then the transcript.
    turns.anthropic = editScript();
    const cli = await runOz(
      ['agent', 'run-cloud', '-p', 'Make it say Hello, Oz', '-e', envId, '--harness', 'oz', '--model', MODELS.anthropic, '--max-steps', '10', '--wait', '--output-format', 'text'],
      server.cliEnv,
    );
    expect(cli.code, cli.stderr).toBe(0);
    const runId = cli.stdout.split('\n')[0]?.trim() ?? '';
    expect(cli.stdout).toContain(`${runId}\tSUCCEEDED`);
    const run = await finished(runId);
    expect(run.agent_config).toMatchObject({ harness: { type: 'oz' }, model_id: MODELS.anthropic, max_steps: 10 });
    const transcript = await runOz(['run', 'get', runId, '--conversation'], server.cliEnv);
    expect(transcript.code, transcript.stderr).toBe(0);
    expect(transcript.stdout).toContain('assistant: Let me look at the greeting.');
    expect(transcript.stdout).toMatch(/→ read_file \{"path":"greet.sh"\}/);
    expect(transcript.stdout).toMatch(/← read_file: +1\techo "Hello"/);
    expect(transcript.stdout).toContain('← bash: test passed');
    expect(transcript.stdout).toContain('state: INPROGRESS → SUCCEEDED (The greeting now says Hello, Oz; the tests pass.\nPushed branch');
    expect(transcript.stdout).toContain('usage: 700 in / 150 out tokens, 5 steps');

    // Bad budgets are refused, naming the field.
    const bad = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt: 'x', config: { max_steps: 0 } } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('max_steps');
    const badCli = await runOz(['agent', 'run-cloud', '-p', 'x', '--max-tokens', 'lots'], server.cliEnv);
    expect(badCli.code).toBe(2);
    expect(badCli.stderr).toContain('--max-tokens');
  });
});
