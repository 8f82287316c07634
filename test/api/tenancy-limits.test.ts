import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListEnvironmentsResponse } from '../../src/api/environments.js';
import { systemClock } from '../../src/core/clock.js';
import type { RunLimits } from '../../src/core/environment.js';
import type { Team, User } from '../../src/core/identity.js';
import type { ClaimedRun, ClaimResponse } from '../../src/core/worker-protocol.js';
import { Envelope } from '../../src/secrets/envelope.js';
import { createApp } from '../../src/server/create-app.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import { EventHub } from '../../src/server/event-hub.js';
import { postgresFactory, resolveTestPostgres, sqliteFactory, type StoreFactory, type StoreHandle } from '../support/store-factories.js';

const MIB = 2 ** 20;
const WORKER_SECRET = `embedded-${randomBytes(8).toString('hex')}`;
/** The operator's settings for these tests: OZ_SANDBOX_* and OZ_SANDBOX_MAX_*. */
const OPERATOR: { defaults: RunLimits; maxima: RunLimits } = {
  defaults: { pids: 1024, memoryBytes: 4096 * MIB, diskBytes: 10_240 * MIB, outputBytes: 256 * MIB, cpus: 2, maxRuntimeMs: 240 * 60_000 },
  maxima: { pids: 4096, memoryBytes: 8192 * MIB, diskBytes: 20_480 * MIB, outputBytes: 1024 * MIB, cpus: 4, maxRuntimeMs: 480 * 60_000 },
};

type Json = Record<string, unknown>;
interface Reply {
  status: number;
  body: Json;
}

/**
 * The user API in-process (Fastify inject) on a real store: operator and team
 * ceilings on environments, runs, schedules and claims (issue 16 item 5);
 * who an admin can act on (the platform team); schedule references checked
 * for the editor (item 8); NUL characters refused in every field.
 */
function describeTenancy(factory: StoreFactory): void {
  describe(`limits, admins and tenancy on ${factory.name}`, () => {
    let handle: StoreHandle;
    let app: FastifyInstance;
    let platformAdmin: string;
    let tenant: Team;
    let tenantAdmin: string;
    let alice: { user: User; key: string };
    let bob: { user: User; key: string };

    const call = async (key: string, method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown): Promise<Reply> => {
      const res = await app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key}`, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
      });
      return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as Json) : {} };
    };
    const expectProblem = (res: Reply, status: number, reason: string | undefined, detail?: RegExp): void => {
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      if (reason !== undefined) expect(res.body.reason, JSON.stringify(res.body)).toBe(reason);
      if (reason !== undefined) expect(String(res.body.detail)).toContain(reason);
      if (detail) expect(String(res.body.detail)).toMatch(detail);
    };
    const member = async (team: Team, role: 'admin' | 'member' = 'member'): Promise<{ user: User; key: string }> => {
      const user = await handle.store.createUser({ teamId: team.id, email: `${randomBytes(5).toString('hex')}@example.test`, displayName: null, role }, systemClock.now());
      const minted = mintCredential(API_KEY_PREFIX);
      await handle.store.createApiKey({ teamId: team.id, userId: user.id, name: 'k', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, systemClock.now());
      return { user, key: minted.secret };
    };
    const createEnv = async (key: string, body: Json): Promise<Reply> =>
      call(key, 'POST', '/api/v1/agent/environments', { name: `env-${randomBytes(3).toString('hex')}`, ...body });
    const claimAll = async (): Promise<ClaimedRun[]> => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/worker/claim',
        headers: { authorization: `Bearer ${WORKER_SECRET}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ worker_id: 'w', max_runs: 64, wait_ms: 0 }),
      });
      expect(res.statusCode, res.body).toBe(200);
      return (JSON.parse(res.body) as ClaimResponse).runs;
    };

    beforeAll(async () => {
      handle = await factory.open();
      app = await createApp({
        store: handle.store,
        clock: systemClock,
        envelope: new Envelope(randomBytes(32)),
        hub: new EventHub(null),
        logger: pino({ level: 'silent' }),
        models: { defaultModel: null, models: [] },
        teamMaxConcurrentRuns: 100,
        leaseTtlMs: 30_000,
        embeddedWorkerSecret: WORKER_SECRET,
        sandboxLimits: OPERATOR,
      });
      await app.ready();
      // The first team is the platform team (as `oz server` bootstraps it).
      const operators = await handle.store.createTeam({ name: `operators-${randomBytes(3).toString('hex')}`, maxConcurrentRuns: 100 }, systemClock.now());
      platformAdmin = (await member(operators, 'admin')).key;
      tenant = await handle.store.createTeam({ name: `tenant-${randomBytes(3).toString('hex')}`, maxConcurrentRuns: 100 }, systemClock.now());
      tenantAdmin = (await member(tenant, 'admin')).key;
      alice = await member(tenant);
      bob = await member(tenant);
    });
    afterAll(async () => {
      await app?.close();
      await handle?.cleanup();
    });

    describe('operator limits are defaults and ceilings', () => {
      it('refuses an environment limit above the operator ceiling, naming the field and the maximum; cpus is stored and presented', async () => {
        expectProblem(await createEnv(alice.key, { limits: { memory_mb: 1_048_576 } }), 400, 'limits.memory_mb', /maximum of 8192/);
        expectProblem(await createEnv(alice.key, { limits: { pids: 20_000 } }), 400, 'limits.pids', /maximum of 4096/);
        expectProblem(await createEnv(alice.key, { limits: { disk_mb: 10_485_760 } }), 400, 'limits.disk_mb', /maximum of 20480/);
        expectProblem(await createEnv(alice.key, { limits: { output_mb: 2048 } }), 400, 'limits.output_mb', /maximum of 1024/);
        expectProblem(await createEnv(alice.key, { limits: { cpus: 16 } }), 400, 'limits.cpus', /maximum of 4/);
        expectProblem(await createEnv(alice.key, { limits: { max_runtime_seconds: 7 * 24 * 3600 } }), 400, 'limits.max_runtime_seconds', /maximum of 28800/);
        const ok = await createEnv(alice.key, { limits: { memory_mb: 8192, cpus: 1.5, max_runtime_seconds: 600 } });
        expect(ok.status, JSON.stringify(ok.body)).toBe(201);
        expect((ok.body.config as Json).limits).toEqual({ memory_mb: 8192, cpus: 1.5, max_runtime_seconds: 600 });
        const uid = String(ok.body.uid);
        expectProblem(await call(alice.key, 'PATCH', `/api/v1/agent/environments/${uid}`, { limits: { cpus: 4.5 } }), 400, 'limits.cpus');
        expect((await call(alice.key, 'PATCH', `/api/v1/agent/environments/${uid}`, { limits: { cpus: 0.5 } })).status).toBe(200);
        expect(((await call(alice.key, 'GET', `/api/v1/agent/environments/${uid}`)).body.config as Json).limits).toEqual({ cpus: 0.5 });
      });

      it('refuses a run or schedule runtime above the ceiling; a claimed run carries cpus and the resolved limits', async () => {
        expectProblem(
          await call(alice.key, 'POST', '/api/v1/agent/runs', { prompt: 'x', config: { harness: { type: 'command' }, max_runtime_seconds: 30_000 } }),
          400,
          'config.max_runtime_seconds',
          /maximum of 28800/,
        );
        expectProblem(
          await call(alice.key, 'POST', '/api/v1/agent/schedules', { name: 's', cron_schedule: '0 3 * * *', prompt: 'x', agent_config: { max_runtime_seconds: 30_000 } }),
          400,
          'agent_config.max_runtime_seconds',
        );
        const env = await createEnv(alice.key, { limits: { cpus: 1.25, pids: 2048 } });
        const run = await call(alice.key, 'POST', '/api/v1/agent/runs', { prompt: 'echo hi', config: { harness: { type: 'command' }, environment_id: env.body.uid } });
        expect(run.status, JSON.stringify(run.body)).toBe(200);
        const bare = await call(alice.key, 'POST', '/api/v1/agent/runs', { prompt: 'echo bare', config: { harness: { type: 'command' }, max_runtime_seconds: 60 } });
        const claimed = await claimAll();
        const onEnv = claimed.find((c) => c.run_id === run.body.run_id);
        expect(onEnv?.environment?.limits.cpus).toBe(1.25);
        expect(onEnv?.limits).toEqual({ ...OPERATOR.defaults, cpus: 1.25, pids: 2048 });
        expect(onEnv?.max_runtime_ms).toBe(OPERATOR.defaults.maxRuntimeMs);
        const noEnv = claimed.find((c) => c.run_id === bare.body.run_id);
        expect(noEnv?.limits).toEqual({ ...OPERATOR.defaults, maxRuntimeMs: 60_000 });
        expect(noEnv?.max_runtime_ms).toBe(60_000);
      });

      it("a platform admin sets a team's ceilings: they lower the operator's, show in /me, bind environments, runs and claims", async () => {
        const team = await handle.store.createTeam({ name: `ceil-${randomBytes(3).toString('hex')}`, maxConcurrentRuns: 100 }, systemClock.now());
        const carol = await member(team);
        const early = await createEnv(carol.key, { limits: { memory_mb: 6000 } });
        expect(early.status).toBe(201);

        expectProblem(
          await call(platformAdmin, 'PATCH', `/api/v1/admin/teams/${team.id}`, { limit_ceilings: { memory_mb: 100_000 } }),
          400,
          'limit_ceilings.memory_mb',
          /operator's maximum of 8192/,
        );
        const patched = await call(platformAdmin, 'PATCH', `/api/v1/admin/teams/${team.name}`, { limit_ceilings: { memory_mb: 2048, cpus: 1 }, max_concurrent_runs: 7 });
        expect(patched.status, JSON.stringify(patched.body)).toBe(200);
        expect(patched.body).toMatchObject({ uid: team.id, max_concurrent_runs: 7, limit_ceilings: { memory_mb: 2048, cpus: 1 }, platform: false });

        const me = await call(carol.key, 'GET', '/api/v1/me');
        expect(me.body.limits).toEqual({
          defaults: { max_runtime_seconds: 14_400, pids: 1024, memory_mb: 2048, disk_mb: 10_240, output_mb: 256, cpus: 1 },
          maxima: { max_runtime_seconds: 28_800, pids: 4096, memory_mb: 2048, disk_mb: 20_480, output_mb: 1024, cpus: 1 },
        });
        expectProblem(await createEnv(carol.key, { limits: { memory_mb: 4096 } }), 400, 'limits.memory_mb', /maximum of 2048/);
        expectProblem(await createEnv(carol.key, { limits: { cpus: 1.5 } }), 400, 'limits.cpus', /maximum of 1\b/);
        // An environment saved before the ceiling was lowered: its runs are refused, naming the limit to lower.
        expectProblem(
          await call(carol.key, 'POST', '/api/v1/agent/runs', { prompt: 'x', config: { harness: { type: 'command' }, environment_id: early.body.uid } }),
          400,
          'config.environment_id',
          /limits\.memory_mb = 6000, above the maximum of 2048/,
        );
        // A run that sets nothing gets the team's defaults: the operator's, lowered to the team's ceilings.
        const run = await call(carol.key, 'POST', '/api/v1/agent/runs', { prompt: 'echo hi', config: { harness: { type: 'command' } } });
        const claimed = (await claimAll()).find((c) => c.run_id === run.body.run_id);
        expect(claimed?.limits).toEqual({ ...OPERATOR.defaults, memoryBytes: 2048 * MIB, cpus: 1 });

        expect((await call(platformAdmin, 'PATCH', `/api/v1/admin/teams/${team.id}`, { limit_ceilings: null })).body.limit_ceilings).toEqual({});
        expect((await call(carol.key, 'POST', '/api/v1/agent/runs', { prompt: 'x', config: { harness: { type: 'command' }, environment_id: early.body.uid } })).status).toBe(200);
        await claimAll();
      });
    });

    describe('admins: the platform team administers the deployment, other admins their own team', () => {
      it("a team admin manages its own team's users and keys, and nothing of another team or the deployment", async () => {
        const other = await handle.store.createTeam({ name: `other-${randomBytes(3).toString('hex')}`, maxConcurrentRuns: 4 }, systemClock.now());
        const outsider = await member(other);
        expectProblem(await call(tenantAdmin, 'POST', '/api/v1/admin/teams', { name: `sneaky-${randomBytes(3).toString('hex')}` }), 403, undefined, /platform team/);
        expectProblem(await call(tenantAdmin, 'PATCH', `/api/v1/admin/teams/${tenant.id}`, { limit_ceilings: {} }), 403, undefined);
        expectProblem(
          await call(tenantAdmin, 'POST', '/api/v1/admin/users', { email: `${randomBytes(4).toString('hex')}@example.test`, team: other.name, role: 'admin' }),
          404,
          'team',
        );
        expectProblem(await call(tenantAdmin, 'POST', `/api/v1/admin/users/${outsider.user.id}/api-keys`, { name: 'takeover' }), 404, undefined);
        expectProblem(await call(tenantAdmin, 'POST', `/api/v1/admin/users/${outsider.user.email}/api-keys`, { name: 'takeover' }), 404, undefined);
        expectProblem(await call(tenantAdmin, 'GET', `/api/v1/admin/teams/${other.id}`), 404, 'path.teamId');
        for (const [method, url, body] of [
          ['POST', '/api/v1/worker-tokens', { name: 'sneaky' }],
          ['GET', '/api/v1/worker-tokens', undefined],
          ['POST', '/api/v1/worker-tokens/whatever/revoke', undefined],
        ] as const) {
          expectProblem(await call(tenantAdmin, method, url, body), 403, undefined);
        }
        // Its own team: yes.
        const hired = await call(tenantAdmin, 'POST', '/api/v1/admin/users', { email: `${randomBytes(4).toString('hex')}@example.test`, team: tenant.name });
        expect(hired.status, JSON.stringify(hired.body)).toBe(201);
        expect((await call(tenantAdmin, 'POST', `/api/v1/admin/users/${String(hired.body.uid)}/api-keys`, { name: 'k' })).status).toBe(201);
        expect((await call(tenantAdmin, 'GET', `/api/v1/admin/teams/${tenant.id}`)).body).toMatchObject({ uid: tenant.id, platform: false });
      });

      it('a platform admin acts on every team', async () => {
        const made = await call(platformAdmin, 'POST', '/api/v1/admin/teams', { name: `new-${randomBytes(3).toString('hex')}`, limit_ceilings: { pids: 64 } });
        expect(made.status, JSON.stringify(made.body)).toBe(201);
        expect(made.body).toMatchObject({ platform: false, limit_ceilings: { pids: 64 } });
        const user = await call(platformAdmin, 'POST', '/api/v1/admin/users', { email: `${randomBytes(4).toString('hex')}@example.test`, team: String(made.body.name) });
        expect(user.status).toBe(201);
        expect((await call(platformAdmin, 'POST', `/api/v1/admin/users/${String(user.body.uid)}/api-keys`, { name: 'k' })).status).toBe(201);
        expect((await call(platformAdmin, 'POST', `/api/v1/admin/users/${alice.user.id}/api-keys`, { name: 'k' })).status).toBe(201);
        expect((await call(platformAdmin, 'GET', '/api/v1/worker-tokens')).status).toBe(200);
        expect(((await call(platformAdmin, 'GET', '/api/v1/me')).body.team as Json).platform).toBe(true);
      });
    });

    describe('schedules: references are checked for the editor, who the schedule then runs as', () => {
      it("a teammate cannot point a schedule at another user's personal environment, and an edited schedule runs as its editor", async () => {
        const personal = await createEnv(alice.key, { team: false });
        const shared = await createEnv(alice.key, {});
        const created = await call(alice.key, 'POST', '/api/v1/agent/schedules', {
          name: 'nightly',
          cron_schedule: '0 3 * * *',
          prompt: 'echo nightly',
          agent_config: { harness: { type: 'command' }, environment_id: shared.body.uid },
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const id = String(created.body.id);
        const put = (key: string, environmentId: unknown) =>
          call(key, 'PUT', `/api/v1/agent/schedules/${id}`, {
            name: 'nightly',
            cron_schedule: '0 3 * * *',
            prompt: 'echo changed',
            enabled: true,
            agent_config: { harness: { type: 'command' }, environment_id: environmentId },
          });
        expectProblem(await put(bob.key, personal.body.uid), 404, 'agent_config.environment_id');
        expect((await call(bob.key, 'GET', `/api/v1/agent/schedules/${id}`)).body.agent_config).toMatchObject({ environment_id: shared.body.uid });
        // The owner may use their own personal environment.
        expect((await put(alice.key, personal.body.uid)).status).toBe(200);
        // Bob edits it (the template is his now): his references are checked, and it runs as him.
        expectProblem(await put(bob.key, personal.body.uid), 404, 'agent_config.environment_id');
        const edited = await put(bob.key, shared.body.uid);
        expect(edited.status, JSON.stringify(edited.body)).toBe(200);
        expect(edited.body).toMatchObject({ created_by: { uid: bob.user.id }, updated_by: { uid: bob.user.id } });
        const spawned = await call(alice.key, 'POST', `/api/v1/agent/schedules/${id}/run-now`);
        expect(spawned.status, JSON.stringify(spawned.body)).toBe(200);
        const run = await call(alice.key, 'GET', `/api/v1/agent/runs/${String(spawned.body.run_id)}`);
        expect(run.body.creator).toEqual({ type: 'user', uid: bob.user.id });
        await claimAll();
      });
    });

    describe('NUL characters', () => {
      it('are refused in every field of the body, the query and the path, naming the field', async () => {
        const nul = 'a\u0000b';
        expectProblem(await createEnv(alice.key, { name: nul }), 400, 'name', /NUL/);
        expectProblem(await createEnv(alice.key, { setup_commands: ['echo ok', `echo ${nul}`] }), 400, 'setup_commands[1]');
        expectProblem(await createEnv(alice.key, { env: { GOOD: 'x', OTHER: nul } }), 400, 'env.OTHER');
        expectProblem(await createEnv(alice.key, { env: { [`BAD${nul}`]: 'x' } }), 400, `env.BAD${nul}`);
        expectProblem(await call(alice.key, 'POST', '/api/v1/agent/runs', { prompt: nul }), 400, 'prompt');
        expectProblem(await call(alice.key, 'POST', '/api/v1/agent/runs', { prompt: 'ok', title: nul }), 400, 'title');
        expectProblem(await call(alice.key, 'POST', '/api/v1/agent/runs', { prompt: 'ok', config: { harness: { type: 'command' }, name: nul } }), 400, 'config.name');
        expectProblem(await call(alice.key, 'POST', '/api/v1/secrets', { name: 'NUL_SECRET', value: `long-enough-${nul}` }), 400, 'value');
        expectProblem(await call(alice.key, 'POST', '/api/v1/agent/schedules', { name: nul, cron_schedule: '0 3 * * *', prompt: 'x' }), 400, 'name');
        expectProblem(await call(alice.key, 'POST', '/api/v1/api-keys', { name: nul }), 400, 'name');
        expectProblem(await call(alice.key, 'GET', '/api/v1/agent/runs?q=a%00b'), 400, 'query.q');
        expectProblem(await call(alice.key, 'GET', '/api/v1/agent/runs?name=a%00b'), 400, 'query.name');
        expectProblem(await call(alice.key, 'GET', '/api/v1/agent/runs/a%00b'), 400, 'path.runId');
        expectProblem(await call(alice.key, 'GET', '/api/v1/agent/environments/a%00b'), 400, 'path.uid');
        // Nothing was written.
        const names = ((await call(alice.key, 'GET', '/api/v1/agent/environments')).body as ListEnvironmentsResponse).environments.map((e) => e.config.name);
        expect(names.some((n) => n.includes('\u0000'))).toBe(false);
      });
    });
  });
}

const pgUrl = await resolveTestPostgres();
describeTenancy(sqliteFactory);
describe.skipIf(pgUrl === null)('on PostgreSQL', () => {
  describeTenancy(postgresFactory(pgUrl ?? ''));
});
