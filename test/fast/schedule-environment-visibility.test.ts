import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';

/** A schedule shows its environment only as far as the reader may see it: a teammate never gets another's personal environment. */
describe("a team schedule naming its creator's personal environment", () => {
  let server: InProcessApp;
  const keys: Record<'a' | 'b', string> = { a: '', b: '' };

  beforeAll(async () => {
    server = await startInProcessApp();
    const now = Date.now();
    const team = await server.store.createTeam({ name: 'team', maxConcurrentRuns: 10 }, now);
    for (const who of ['a', 'b'] as const) {
      const user = await server.store.createUser({ teamId: team.id, email: `${who}@example.test`, displayName: who, role: 'member' }, now);
      const minted = mintCredential(API_KEY_PREFIX);
      await server.store.createApiKey({ teamId: team.id, userId: user.id, name: who, prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
      keys[who] = minted.secret;
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  const call = async (who: 'a' | 'b', method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await server.app.inject({ method, url, headers: { authorization: `Bearer ${keys[who]}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });
    return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
  };

  it('shows it to its creator, and to a teammate without it', async () => {
    const env = await call('a', 'POST', '/api/v1/agent/environments', { name: 'mine', team: false, setup_commands: ['echo private-setup'] });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    const created = await call('a', 'POST', '/api/v1/agent/schedules', {
      name: 'nightly',
      cron_schedule: '0 3 * * *',
      prompt: 'p',
      agent_config: { environment_id: env.body.uid },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(JSON.stringify(created.body.environment)).toContain('private-setup');
    const listed = await call('b', 'GET', '/api/v1/agent/schedules');
    const seen = (listed.body.schedules as Record<string, unknown>[]).find((s) => s.schedule_id === created.body.schedule_id);
    expect(seen, 'the teammate sees the team schedule').toBeDefined();
    expect(seen?.environment).toBeUndefined();
    expect(JSON.stringify(listed.body)).not.toContain('private-setup');
    const one = await call('b', 'GET', `/api/v1/agent/schedules/${String(created.body.schedule_id)}`);
    expect(JSON.stringify(one.body)).not.toContain('private-setup');
  });
});
