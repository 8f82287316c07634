import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { runEvents } from '../support/run-events.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

describe('oz harness-support inside a network-off sandbox', () => {
  let server: OzServerHandle;
  let envId: string;

  beforeAll(async () => {
    server = await startOzServer('sqlite', { env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '10' } });
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: `env-${randomBytes(3).toString('hex')}`, network: 'off' } });
    expect(env.status).toBe(201);
    envId = (env.body as { uid: string }).uid;
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  const run = async (script: string, extra: { body?: Json; config?: Json } = {}): Promise<{ run: Json; output: string; events: { type: string; data: Json }[] }> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: script, ...extra.body, config: { harness: { type: 'command' }, environment_id: envId, ...extra.config } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const result = await until(`run ${id}`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    return { run: result, output, events };
  };

  it('reports a pull request, a note and the finish, which show up on the run', async () => {
    const {
      run: result,
      output,
      events,
    } = await run(
      [
        'echo "links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
        'oz harness-support report-artifact pull-request --url https://github.example/acme/web/pull/7 --branch feature/login',
        'oz harness-support notify-user --message "halfway there"',
        'oz harness-support finish-task --status success --summary "Validated the login form."',
      ].join(' && \n'),
    );
    expect(output).toContain('links=lo \n');
    expect(result.state, output).toBe('SUCCEEDED');
    expect((result.status_message as Json).message).toBe('Validated the login form.');
    expect(result.artifacts).toEqual([
      { artifact_type: 'PULL_REQUEST', created_at: expect.any(String), data: { url: 'https://github.example/acme/web/pull/7', branch: 'feature/login' } },
    ]);
    expect(events.some((e) => e.type === 'notice' && e.data.message === 'halfway there')).toBe(true);
  });

  it('refuses a wrong token and bad input with a clear message; a reported failure fails the run', async () => {
    const { run: result, output } = await run(
      [
        'OZ_SUPPORT_TOKEN=not-the-token oz harness-support notify-user --message hi; echo "wrong token rc=$?"',
        'oz harness-support report-artifact pull-request --url not-a-url --branch b; echo "bad url rc=$?"',
        'oz harness-support finish-task --status failure --summary "The tests cannot pass."',
      ].join('\n'),
    );
    expect(output).toContain('wrong token rc=1');
    expect(output).toMatch(/the run refused it \(401\)/);
    expect(output).toContain('bad url rc=2');
    expect(output).toMatch(/url: must be an http\(s\) URL/);
    expect(result.state).toBe('FAILED');
    expect(result.status_message).toMatchObject({ message: 'The tests cannot pass.', reason: 'agent_reported_failure' });
    expect(result.artifacts).toEqual([]);
  });

  it("takes Oz's --run-id, answers ping, records an external reference, sets Oz's variables, and a shutdown with an error fails the run", async () => {
    const {
      run: result,
      output,
      events,
    } = await run(
      [
        'echo "vars harness=$WARP_HARNESS cli=$OZ_CLI warp_cli=$WARP_CLI"',
        'oz harness-support --run-id "$OZ_RUN_ID" ping',
        'oz harness-support --run-id=someone-else ping; echo "other run rc=$?"',
        'oz harness-support report-external-reference --url https://ci.example/builds/42 --reference-type build --title "CI build" --metadata \'{"number":42}\'',
        'oz harness-support report-external-reference --url https://ci.example/x --reference-type build --metadata "[1]"; echo "bad metadata rc=$?"',
        '"$OZ_CLI" harness-support report-shutdown --error-category auth_failed --error-message "the token expired"',
      ].join('\n'),
    );
    expect(output).toContain('vars harness=command cli=/oz/bin/oz warp_cli=/oz/bin/oz');
    expect(output).toMatch(/^ok$/m);
    expect(output).toContain('other run rc=2');
    expect(output).toMatch(/--run-id: this process belongs to run \S+, not someone-else/);
    expect(output).toContain('bad metadata rc=2');
    expect(output).toContain('--metadata: must be a JSON object');
    const reference = events.find((e) => e.type === 'notice' && e.data.reason === 'external_reference');
    expect(reference?.data).toMatchObject({
      message: 'build: CI build https://ci.example/builds/42',
      reference: { url: 'https://ci.example/builds/42', type: 'build', title: 'CI build', metadata: { number: 42 } },
    });
    expect(events.some((e) => e.type === 'notice' && e.data.reason === 'harness_shutdown' && String(e.data.message).includes('the token expired'))).toBe(true);
    expect(result.state, output).toBe('FAILED');
    expect(result.status_message).toMatchObject({ message: 'the token expired', reason: 'auth_failed' });
  });

  it('a child run sees its parent, and a GitHub token under both of its names', async () => {
    const token = `ghp_${randomBytes(12).toString('hex')}`;
    const secret = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'GH', value: token, type: 'github-token' } });
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
    const parent = await run('true');
    const script = [
      'echo "parent=$OZ_PARENT_RUN_ID warp_parent=$WARP_PARENT_RUN_ID"',
      '[ -n "$GITHUB_TOKEN" ] && [ "$GITHUB_ACCESS_TOKEN" = "$GITHUB_TOKEN" ] && echo "token under both names"',
    ].join('\n');
    const { run: child, output } = await run(script, { body: { parent_run_id: parent.run.run_id }, config: { secrets: ['GH'] } });
    expect(child.state, output).toBe('SUCCEEDED');
    expect(output).toContain(`parent=${String(parent.run.run_id)} warp_parent=${String(parent.run.run_id)}`);
    expect(output).toContain('token under both names');
    expect(output).not.toContain(token);
  });
});
