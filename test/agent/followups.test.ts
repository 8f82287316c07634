import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startForgeDouble, type ForgeDouble } from '../support/forge-double.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { startModelServer, type ModelServer, type RecordedRequest, type ScriptedTurn } from '../support/model-server.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { until } from '../support/until.js';
import { executionEnded, sendFollowup } from '../support/followups.js';

type Json = Record<string, unknown>;
const TOKEN = 'ghp_followups_test_token';
const MODEL = 'anthropic/claude-scripted';

/**
 * Follow-ups against the real server, its embedded worker, bwrap sandboxes,
 * local bare repositories, the scripted model and the forge double
 * (docs/design.md "Follow-ups and executions").
 */
describe('follow-ups: a run goes on in the same conversation, on the same branch and pull request', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let forge: ForgeDouble;
  let model: ModelServer;
  let localUrl: string;
  let localBare: string;
  let githubBare: string;
  const turns: ScriptedTurn[] = [];

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-followups-'));
    chmodSync(fixtures, 0o755);
    localUrl = makeBareRepo(fixtures, 'app', { 'README.md': '# app\n', '.gitignore': 'build/\n' });
    localBare = join(fixtures, 'app.git');
    mkdirSync(join(fixtures, 'forge', 'acme'), { recursive: true });
    makeBareRepo(join(fixtures, 'forge', 'acme'), 'web', { 'index.html': '<h1>Hello</h1>\n' }, { 'feature/login': { 'login.html': '<form></form>\n' } });
    githubBare = join(fixtures, 'forge', 'acme', 'web.git');
    forge = await startForgeDouble({ token: TOKEN });
    model = await startModelServer({
      protocol: 'anthropic',
      script: () => turns.shift(),
    });
    server = await startOzServer('sqlite', {
      env: {
        OZ_FILE_REPO_ROOTS: fixtures,
        OZ_TEAM_MAX_CONCURRENT_RUNS: '10',
        OZ_GITHUB_GIT_URL: `file://${join(fixtures, 'forge')}`,
        OZ_GITHUB_API_URL: forge.apiUrl,
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: model.anthropicBaseUrl,
        OZ_MODEL_MAX_RETRIES: '0',
      },
    });
    const secret = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'GH', type: 'github-token', value: TOKEN } });
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await model?.close();
      await forge?.close();
      rmSync(fixtures, { recursive: true, force: true });
    }
  });
  beforeEach(() => {
    turns.length = 0;
    model.requests.length = 0;
  });

  const environment = async (body: Json): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: `env-${Math.random().toString(36).slice(2, 8)}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const start = async (prompt: string, config: Json): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt, config } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { run_id: string }).run_id;
  };
  const get = async (id: string): Promise<Json> => (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
  const ended = (id: string, n: number): Promise<Json> => executionEnded(server, id, n);
  const followUp = (id: string, message: string): Promise<Json> => sendFollowup(server, id, message);
  const userTexts = async (id: string): Promise<string[]> => {
    const res = await api(server, 'GET', `/api/v1/agent/runs/${id}/conversation`, { key: server.adminKey });
    const steps = (res.body as { steps: { messages: { role: string; content: Json[] }[] }[] }).steps;
    return steps.flatMap((s) => s.messages.filter((m) => m.role === 'user').flatMap((m) => m.content.map((b) => String(b.text))));
  };
  /** Every text a model request carried (system aside), in order. */
  const requestTexts = (req: RecordedRequest): string => JSON.stringify((req.body as Json).messages);

  it('the built-in agent: file A, then a follow-up writes file B on the same branch; one pull request; both prompts in order; the second call carries the first conversation', async () => {
    const envId = await environment({ repos: [{ url: 'https://github.com/acme/web.git' }], secrets: ['GH'] });
    turns.push(
      { toolCalls: [{ name: 'write_file', input: { path: 'a.txt', content: 'first\n' } }] },
      { toolCalls: [{ name: 'finish', input: { summary: 'Wrote a.txt.', success: true } }] },
    );
    const id = await start('Write a.txt saying first.', { environment_id: envId, model_id: MODEL });
    const first = await ended(id, 1);
    expect(first.state, JSON.stringify(first.status_message)).toBe('SUCCEEDED');
    const branch = `oz/${id}`;
    expect(git(githubBare, 'show', `${branch}:a.txt`)).toBe('first\n');
    expect(forge.pulls.filter((p) => p.head === branch)).toHaveLength(1);

    turns.push(
      { toolCalls: [{ name: 'write_file', input: { path: 'b.txt', content: 'second\n' } }] },
      { toolCalls: [{ name: 'finish', input: { summary: 'Wrote b.txt.', success: true } }] },
    );
    const sent = await followUp(id, 'Now also write b.txt saying second.');
    expect(sent).toMatchObject({ run_id: id, execution: 2, delivery: 'new_execution', followup: { seq: 1 } });
    const second = await ended(id, 2);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    expect(String((second.status_message as Json).message)).toContain('Updated pull request');

    // The branch has both commits, one on the other; both files are there; one pull request.
    expect(git(githubBare, 'show', `${branch}:a.txt`)).toBe('first\n');
    expect(git(githubBare, 'show', `${branch}:b.txt`)).toBe('second\n');
    expect(git(githubBare, 'rev-list', '--count', `main..${branch}`).trim()).toBe('2');
    expect(forge.pulls.filter((p) => p.head === branch)).toHaveLength(1);
    // The conversation holds both prompts in order.
    expect(await userTexts(id)).toEqual(['Write a.txt saying first.', 'Now also write b.txt saying second.']);
    // The model's first call of execution 2 carries the first execution's conversation, then the follow-up.
    const call = requestTexts(model.requests[2] as RecordedRequest);
    expect(call.indexOf('Write a.txt saying first.')).toBeGreaterThanOrEqual(0);
    expect(call.indexOf('Wrote a.txt.')).toBeGreaterThan(call.indexOf('Write a.txt saying first.'));
    expect(call.indexOf('Now also write b.txt saying second.')).toBeGreaterThan(call.indexOf('Wrote a.txt.'));
    // Two executions, each with its own timestamps and outcome; the usage adds up.
    const executions = second.executions as Json[];
    expect(executions.map((e) => [e.number, e.state])).toEqual([
      [1, 'SUCCEEDED'],
      [2, 'SUCCEEDED'],
    ]);
    expect(Date.parse(String(executions[1]?.created_at))).toBeGreaterThanOrEqual(Date.parse(String(executions[0]?.ended_at)));
    // The run's diff: one patch over both executions, from the commit it started on.
    const diff = (await api(server, 'GET', `/api/v1/agent/runs/${id}/diff`, { key: server.adminKey })).body as { diffs: Json[] };
    expect(diff.diffs).toHaveLength(1);
    expect(diff.diffs[0]).toMatchObject({ repository: 'https://github.com/acme/web.git', execution: 2, truncated: false, base: git(githubBare, 'rev-parse', 'main').trim() });
    expect(diff.diffs[0]?.head).toBe(git(githubBare, 'rev-parse', branch).trim());
    expect(String(diff.diffs[0]?.patch)).toContain('+++ b/a.txt\n@@ -0,0 +1 @@\n+first');
    expect(String(diff.diffs[0]?.patch)).toContain('+++ b/b.txt\n@@ -0,0 +1 @@\n+second');
  });

  it("the run's diff is cut at 1 MiB, saying so, and never holds a secret's value", async () => {
    const secret = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'DIFF_SECRET', value: 'sekrit-diff-value-42' } });
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
    const envId = await environment({ repos: [{ url: localUrl }], secrets: ['DIFF_SECRET'] });
    const id = await start('echo "token=$DIFF_SECRET" > config.txt && head -c 3000000 /dev/zero | tr "\\0" "y" | fold -w 100 > zbig.txt', {
      environment_id: envId,
      harness: { type: 'command' },
    });
    expect((await ended(id, 1)).state).toBe('SUCCEEDED');
    const diff = (await api(server, 'GET', `/api/v1/agent/runs/${id}/diff`, { key: server.adminKey })).body as { diffs: Json[] };
    const [only] = diff.diffs;
    expect(only).toMatchObject({ truncated: true });
    expect(Number(only?.bytes)).toBeGreaterThan(3_000_000);
    expect(String(only?.patch).length).toBeLessThanOrEqual(1024 * 1024);
    expect(String(only?.patch)).toContain('+++ b/config.txt');
    expect(String(only?.patch)).not.toContain('sekrit-diff-value-42');
    // A run without changes has none; another run's id is a 404.
    const quiet = await start('true', { environment_id: envId, harness: { type: 'command' } });
    await ended(quiet, 1);
    expect(((await api(server, 'GET', `/api/v1/agent/runs/${quiet}/diff`, { key: server.adminKey })).body as { diffs: Json[] }).diffs).toEqual([]);
    expect((await api(server, 'GET', '/api/v1/agent/runs/nope/diff', { key: server.adminKey })).status).toBe(404);
  });

  it('a follow-up sent while the built-in agent works reaches the model at its next step', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    turns.push({ toolCalls: [{ name: 'bash', input: { command: 'sleep 4; echo slept' } }] }, { toolCalls: [{ name: 'finish', input: { summary: 'Done.', success: true } }] });
    const id = await start('Sleep a little.', { environment_id: envId, model_id: MODEL });
    await until('the agent to work', async () => ((await get(id)).state === 'INPROGRESS' && model.requests.length >= 1 ? true : null));
    const sent = await followUp(id, 'Also: mind the tests.');
    expect(sent).toMatchObject({ execution: 1, delivery: 'running' });
    const run = await ended(id, 1);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect(model.requests).toHaveLength(2);
    expect(requestTexts(model.requests[0] as RecordedRequest)).not.toContain('mind the tests');
    expect(requestTexts(model.requests[1] as RecordedRequest)).toContain('Also: mind the tests.');
    expect(run.executions as Json[]).toHaveLength(1);
  });

  it('without an idle sandbox, the next execution restores the workspace: an untracked file of execution 1 is there', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    // Execution 1 fails, so nothing is committed: only the workspace snapshot carries its files.
    const id = await start('echo draft > notes.txt && mkdir -p build && echo out > build/x && echo kept > ../outside.txt && exit 3', {
      environment_id: envId,
      harness: { type: 'command' },
    });
    const first = await ended(id, 1);
    expect(first.state).toBe('FAILED');
    await followUp(id, 'cat notes.txt ../outside.txt; test ! -e build/x && echo "no build output"');
    const second = await ended(id, 2);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    const { events, output } = await runEvents(server.storeSpec, id);
    expect(output).toContain('draft\nkept\nno build output\n');
    expect(events.some((e) => e.type === 'notice' && e.data.reason === 'workspace_snapshot_restored')).toBe(true);
    // The commit the follow-up made has the restored file: the run's branch holds it.
    expect(git(localBare, 'show', `oz/${id}:notes.txt`)).toBe('draft\n');
  });

  it('--no-snapshot keeps no workspace: the follow-up starts from the repository alone', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    const id = await start('echo draft > notes.txt; exit 1', { environment_id: envId, harness: { type: 'command' }, snapshot: false });
    expect((await ended(id, 1)).state).toBe('FAILED');
    await followUp(id, 'test ! -e notes.txt');
    expect((await ended(id, 2)).state).toBe('SUCCEEDED');
  });

  it("config.branches: a run starts on an existing pull request's branch, commits on it (fast-forward) and updates that pull request", async () => {
    const envId = await environment({ repos: [{ url: 'https://github.com/acme/web.git' }], secrets: ['GH'] });
    const before = git(githubBare, 'rev-parse', 'feature/login').trim();
    const base = git(githubBare, 'rev-parse', 'main').trim();
    const existing = await fetch(`${forge.apiUrl}/repos/acme/web/pulls`, {
      method: 'POST',
      headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ head: 'feature/login', base: 'main', title: 'Login form', body: 'by a person' }),
    });
    expect(existing.status).toBe(201);
    const id = await start('test -f login.html && echo "<button>Sign in</button>" >> login.html', {
      environment_id: envId,
      harness: { type: 'command' },
      branches: { web: 'feature/login' },
    });
    const run = await ended(id, 1);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect(String((run.status_message as Json).message)).toContain('Updated pull request');
    // On top of the branch's own commit: a fast-forward, nothing rewritten; no branch of the run's own.
    expect(git(githubBare, 'rev-parse', 'feature/login~1').trim()).toBe(before);
    expect(git(githubBare, 'show', 'feature/login:login.html')).toBe('<form></form>\n<button>Sign in</button>\n');
    expect(() => git(githubBare, 'rev-parse', '--verify', '--quiet', `oz/${id}`)).toThrow();
    expect(forge.pulls.filter((p) => p.head === 'feature/login')).toHaveLength(1);
    // A commit works too: the run starts detached on it.
    const onCommit = await start('git rev-parse HEAD', { environment_id: envId, harness: { type: 'command' }, branches: { 'acme/web': base } });
    expect((await ended(onCommit, 1)).state).toBe('SUCCEEDED');
    expect((await runEvents(server.storeSpec, onCommit)).output).toContain(base);
  });

  it('config.branches: when someone pushes to the branch while the run works, the push is refused, saying so (not forced over them)', async () => {
    const envId = await environment({ repos: [{ url: 'https://github.com/acme/web.git' }], secrets: ['GH'] });
    const id = await start('echo "<p>mine</p>" >> login.html && sleep 3', { environment_id: envId, harness: { type: 'command' }, branches: { web: 'feature/login' } });
    await until('the command to run', async () => ((await get(id)).state === 'INPROGRESS' ? true : null));
    // Someone else's commit on the branch, meanwhile.
    const tree = git(githubBare, 'rev-parse', 'feature/login^{tree}').trim();
    const theirs = git(githubBare, '-c', 'user.name=Someone', '-c', 'user.email=someone@example.test', 'commit-tree', tree, '-p', 'feature/login', '-m', 'theirs').trim();
    git(githubBare, 'update-ref', 'refs/heads/feature/login', theirs);
    const run = await ended(id, 1);
    expect(run.state).toBe('FAILED');
    const message = String((run.status_message as Json).message);
    expect(message).toMatch(/The push of feature\/login to \S+ was rejected: feature\/login has commits this run does not have \(someone pushed to it since the run started\)/);
    expect(message).toContain('[rejected]');
    expect(message).not.toContain('hint:');
    expect(git(githubBare, 'rev-parse', 'feature/login').trim()).toBe(theirs);
  });

  it('config.branches naming the default branch: the run starts there but its changes go to its own branch, with a pull request into it', async () => {
    const envId = await environment({ repos: [{ url: 'https://github.com/acme/web.git' }], secrets: ['GH'] });
    const main = git(githubBare, 'rev-parse', 'main').trim();
    const id = await start('echo "<p>x</p>" >> index.html', { environment_id: envId, harness: { type: 'command' }, branches: { web: 'main' } });
    const run = await ended(id, 1);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect(git(githubBare, 'rev-parse', 'main').trim()).toBe(main);
    expect(git(githubBare, 'show', `oz/${id}:index.html`)).toContain('<p>x</p>');
    expect(forge.pulls.filter((p) => p.head === `oz/${id}`).map((p) => p.base)).toEqual(['main']);
    expect((await runEvents(server.storeSpec, id)).events.some((e) => e.data.reason === 'default_branch_protected')).toBe(true);
  });

  it('a follow-up then a cancel: the run stays CANCELLED; a branch that moved since is not restored over', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    const id = await start('echo one > one.txt && sleep 30', { environment_id: envId, harness: { type: 'command' } });
    await until('the command to run', async () => ((await get(id)).state === 'INPROGRESS' ? true : null));
    expect(await followUp(id, 'echo two')).toMatchObject({ delivery: 'running' });
    expect((await api(server, 'POST', `/api/v1/agent/runs/${id}/cancel`, { key: server.adminKey })).status).toBe(200);
    const cancelled = await ended(id, 1);
    expect(cancelled.state).toBe('CANCELLED');
    // The sweeper and the finish had their chance: still one execution.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await get(id)).toMatchObject({ state: 'CANCELLED', execution: 1 });

    const published = await start('echo draft > draft.txt && git add draft.txt && echo wip > wip.txt', { environment_id: envId, harness: { type: 'command' } });
    expect((await ended(published, 1)).state).toBe('SUCCEEDED');
    // Someone pushes to the run's branch before the follow-up.
    const work = join(fixtures, `push-${published}`);
    git(fixtures, 'clone', '--quiet', '--branch', `oz/${published}`, localBare, work);
    git(work, '-c', 'user.name=Person', '-c', 'user.email=p@example.test', 'commit', '--quiet', '--allow-empty', '-m', 'a person was here');
    git(work, 'push', '--quiet', 'origin', `oz/${published}`);
    await followUp(published, 'git log --format=%s -1');
    const second = await ended(published, 2);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    const { events, output } = await runEvents(server.storeSpec, published);
    expect(output).toContain('a person was here');
    expect(events.some((e) => e.data.reason === 'workspace_snapshot_stale')).toBe(true);
    expect(events.some((e) => e.data.reason === 'workspace_snapshot_restored')).toBe(false);
  });

  it('a follow-up to a run whose setup fails runs once: an execution whose agent never started does not start another', async () => {
    const envId = await environment({ repos: [{ url: localUrl }], setup_commands: ['exit 7'] });
    const id = await start('true', { environment_id: envId, harness: { type: 'command' } });
    expect((await ended(id, 1)).state).toBe('FAILED');
    await followUp(id, 'true');
    expect((await ended(id, 2)).state).toBe('FAILED');
    await new Promise((r) => setTimeout(r, 2000));
    expect(await get(id)).toMatchObject({ state: 'FAILED', execution: 2 });
  });

  it('refuses a bad follow-up naming the field, and an unknown run is a 404', async () => {
    const envId = await environment({});
    const id = await start('true', { environment_id: envId, harness: { type: 'command' } });
    await ended(id, 1);
    for (const [body, field] of [
      [{}, 'message'],
      [{ message: '   ' }, 'message'],
      [{ message: 'x', extra: 1 }, 'extra'],
    ] as const) {
      const res = await api(server, 'POST', `/api/v1/agent/runs/${id}/followups`, { key: server.adminKey, body });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(JSON.stringify(res.body)).toContain(field);
    }
    const missing = await api(server, 'POST', '/api/v1/agent/runs/nope/followups', { key: server.adminKey, body: { message: 'x' } });
    expect(missing.status).toBe(404);
    // Nothing was written: still one execution.
    expect((await get(id)).executions as Json[]).toHaveLength(1);
  });
});
