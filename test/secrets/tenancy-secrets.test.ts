import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

/**
 * Tenancy inside a team (issue 16 item 8), end to end on a real server with
 * its embedded worker and the command harness, as two members of one team:
 * a teammate can neither read a member's personal secret by editing a shared
 * environment's setup commands, nor point that member's schedule at the
 * member's personal environment.
 */
describe('tenancy inside a team', () => {
  let server: OzServerHandle;
  let alice: { key: string; email: string };
  let bob: { key: string; email: string };

  const call = (key: string, method: string, path: string, body?: Json) => api(server, method, path, { key, ...(body ? { body } : {}) });
  const newMember = async (): Promise<{ key: string; email: string }> => {
    const email = `${randomBytes(4).toString('hex')}@example.test`;
    const user = await call(server.adminKey, 'POST', '/api/v1/admin/users', { email, team: 'default' });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const key = await call(server.adminKey, 'POST', `/api/v1/admin/users/${(user.body as { uid: string }).uid}/api-keys`, { name: 'k' });
    return { key: (key.body as { key: string }).key, email };
  };
  const createEnvironment = async (key: string, body: Json): Promise<string> => {
    const res = await call(key, 'POST', '/api/v1/agent/environments', { name: `env-${randomBytes(3).toString('hex')}`, ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const finished = async (key: string, id: string): Promise<{ run: Json; output: string; events: { type: string; data: Json }[] }> => {
    const run = await until(`run ${id}`, async () => {
      const body = (await call(key, 'GET', `/api/v1/agent/runs/${id}`)).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    return { run, output, events };
  };
  const run = async (key: string, prompt: string, config: Json) => {
    const res = await call(key, 'POST', '/api/v1/agent/runs', { prompt, config: { harness: { type: 'command' }, ...config } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return finished(key, (res.body as { run_id: string }).run_id);
  };

  beforeAll(async () => {
    server = await startOzServer('sqlite', { env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '10' } });
    alice = await newMember();
    bob = await newMember();
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it("a teammate's edit of a shared environment's setup commands does not get them the creator's personal secret", async () => {
    const value = `alice-only-${randomBytes(8).toString('hex')}`;
    const reversed = [...value].reverse().join('');
    expect((await call(alice.key, 'POST', '/api/v1/secrets', { name: 'ALICE_TOKEN', value, team: false })).status).toBe(201);
    const envId = await createEnvironment(alice.key, { secrets: ['ALICE_TOKEN'], setup_commands: ['true'] });
    const probe = 'echo "own=${ALICE_TOKEN:+set}"';

    // Alice made it: her runs on it get her secret.
    expect((await run(alice.key, probe, { environment_id: envId })).output).toBe('own=set\n');

    // Bob changes the setup commands to print it reversed (which redaction does not recognise).
    const patched = await call(bob.key, 'PATCH', `/api/v1/agent/environments/${envId}`, {
      setup_commands: ['printf "%s\\n" "$ALICE_TOKEN" | rev', 'echo "setup saw=${ALICE_TOKEN:+set}"'],
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const after = await run(alice.key, probe, { environment_id: envId });
    expect(after.run.state, JSON.stringify(after.run.status_message)).toBe('SUCCEEDED');
    expect(after.output).toBe('own=\n');
    const everything = JSON.stringify(after.events);
    expect(everything).not.toContain(reversed);
    expect(everything).not.toContain(value);
    expect(everything).toContain('setup saw=');
    expect(everything).not.toContain('setup saw=set');
    const withheld = after.events.filter((e) => e.type === 'notice' && e.data.reason === 'personal_secrets_withheld');
    expect(withheld).toHaveLength(1);
    expect(String(withheld[0]?.data.message)).toContain('ALICE_TOKEN');
    expect(String(withheld[0]?.data.message)).toContain(bob.email);

    // Alice saves the environment herself (she has seen what it runs): her runs get it again.
    expect((await call(alice.key, 'PATCH', `/api/v1/agent/environments/${envId}`, { setup_commands: ['true'] })).status).toBe(200);
    expect((await run(alice.key, probe, { environment_id: envId })).output).toBe('own=set\n');
  });

  it("a teammate cannot point a member's schedule at the member's personal environment; an edited schedule runs as its editor", async () => {
    const privateValue = `alice-config-${randomBytes(6).toString('hex')}`;
    const personal = await createEnvironment(alice.key, { team: false, env: { ALICE_CONFIG: privateValue } });
    const shared = await createEnvironment(alice.key, {});
    const created = await call(alice.key, 'POST', '/api/v1/agent/schedules', {
      name: 'nightly',
      cron_schedule: '0 3 * * *',
      prompt: 'echo nightly',
      agent_config: { harness: { type: 'command' }, environment_id: shared },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = (created.body as { id: string }).id;
    const replace = (key: string, environmentId: string) =>
      call(key, 'PUT', `/api/v1/agent/schedules/${id}`, {
        name: 'nightly',
        cron_schedule: '0 3 * * *',
        prompt: 'echo "cfg=${ALICE_CONFIG:-}"',
        enabled: true,
        agent_config: { harness: { type: 'command' }, environment_id: environmentId },
      });

    // Bob knows the id of Alice's personal environment (e.g. from a run of hers): refused.
    const refused = await replace(bob.key, personal);
    expect(refused.status, JSON.stringify(refused.body)).toBe(404);
    expect((refused.body as Json).reason).toBe('agent_config.environment_id');

    // Bob's edit with a shared environment is his: the schedule's runs are now made as Bob.
    expect((await replace(bob.key, shared)).status).toBe(200);
    const spawned = await call(alice.key, 'POST', `/api/v1/agent/schedules/${id}/run-now`);
    expect(spawned.status, JSON.stringify(spawned.body)).toBe(200);
    const result = await finished(alice.key, (spawned.body as { run_id: string }).run_id);
    expect(result.output).toBe('cfg=\n');
    const me = (await call(bob.key, 'GET', '/api/v1/me')).body as { user: { uid: string } };
    expect(result.run.creator).toEqual({ type: 'user', uid: me.user.uid });
    expect(JSON.stringify(result.events)).not.toContain(privateValue);
  });
});
