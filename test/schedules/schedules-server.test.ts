import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, runOz, startOzServer, type Backend, type OzServerHandle } from '../support/oz-server-process.js';
import { resolveTestPostgres } from '../support/store-factories.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

const VALID = { name: 'nightly', cron_schedule: '0 3 * * *', prompt: 'echo hello', agent_config: { harness: { type: 'command' } } };

/** A user in a new team of its own, and its API key. */
async function newMember(server: OzServerHandle, team: string): Promise<string> {
  expect((await api(server, 'POST', '/api/v1/admin/teams', { key: server.adminKey, body: { name: team } })).status).toBe(201);
  const user = await api(server, 'POST', '/api/v1/admin/users', { key: server.adminKey, body: { email: `${randomBytes(4).toString('hex')}@example.test`, team } });
  expect(user.status, JSON.stringify(user.body)).toBe(201);
  const key = await api(server, 'POST', `/api/v1/admin/users/${(user.body as { uid: string }).uid}/api-keys`, { key: server.adminKey, body: { name: 'k' } });
  return (key.body as { key: string }).key;
}

function describeSchedulesOn(backend: Backend, pgUrl: string | null) {
  describe.skipIf(backend === 'postgres' && !pgUrl)(`schedules on a running oz server (${backend})`, () => {
    let server: OzServerHandle;
    const create = async (body: Json, key = server.adminKey) => api(server, 'POST', '/api/v1/agent/schedules', { key, body });

    beforeAll(async () => {
      server = await startOzServer(backend, { ...(pgUrl ? { pgUrl } : {}) });
    });
    afterAll(async () => {
      expect(await server?.stop()).toBe(0);
    });

    it('refuses bad input with a 400 naming the field and why, and writes nothing', async () => {
      const cases: [Json, number, string, RegExp][] = [
        [{ ...VALID, cron_schedule: '0 0 3 * * *' }, 400, 'cron_schedule', /exactly five fields .* got 6/],
        [{ ...VALID, cron_schedule: '0 3 * * * 2027' }, 400, 'cron_schedule', /exactly five fields/],
        [{ ...VALID, cron_schedule: '@daily' }, 400, 'cron_schedule', /nicknames like @daily are not supported/],
        [{ ...VALID, cron_schedule: '61 * * * *' }, 400, 'cron_schedule', /cron_schedule: /],
        [{ ...VALID, cron_schedule: '0 0 30 2 *' }, 400, 'cron_schedule', /never fires again/],
        [{ ...VALID, timezone: 'Mars/Olympus_Mons' }, 400, 'timezone', /not an IANA time zone/],
        [{ ...VALID, overlap_policy: 'sometimes' }, 400, 'overlap_policy', /must be one of allow, skip, queue, cancel_previous/],
        [{ ...VALID, name: '  ' }, 400, 'name', /must not be empty/],
        [{ name: 'x', cron_schedule: '* * * * *' }, 400, 'prompt', /prompt: is required/],
        [{ ...VALID, agent_config: { skill_spec: 'a/b' } }, 403, 'agent_config.skill_spec', /agent_config.skill_spec is not available/],
        [{ ...VALID, agent_config: { environment_id: 'nope' } }, 404, 'agent_config.environment_id', /not found/],
        [{ ...VALID, every: 'day' }, 400, '', /every/],
      ];
      for (const [body, status, reason, detail] of cases) {
        const res = await create(body);
        expect(res.status, JSON.stringify(body)).toBe(status);
        const problem = res.body as Json;
        expect(String(problem.detail), JSON.stringify(body)).toMatch(detail);
        if (reason) expect(problem.reason ?? String(problem.detail)).toContain(reason);
      }
      const list = (await api(server, 'GET', '/api/v1/agent/schedules', { key: server.adminKey })).body as { schedules: Json[] };
      expect(list.schedules).toEqual([]);
    });

    it('create, get, replace, pause, resume and delete; another team sees 404', async () => {
      const created = await create({ ...VALID, timezone: 'Europe/Berlin', overlap_policy: 'skip' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const s = created.body as Json;
      expect(s).toMatchObject({
        name: 'nightly',
        cron_schedule: '0 3 * * *',
        cron_description: 'At 03:00',
        timezone: 'Europe/Berlin',
        overlap_policy: 'skip',
        enabled: true,
        last_run: null,
        scope: { type: 'Team' },
      });
      // 03:00 in Berlin is 01:00 or 02:00 UTC, depending on the season.
      expect(String((s.history as Json).next_run)).toMatch(/T0[12]:00:00(\.000)?Z$/);
      const id = String(s.id);

      const outsider = await newMember(server, `other-${randomBytes(3).toString('hex')}`);
      for (const [method, path, body] of [
        ['GET', `/api/v1/agent/schedules/${id}`, undefined],
        ['PUT', `/api/v1/agent/schedules/${id}`, { ...VALID, enabled: true }],
        ['POST', `/api/v1/agent/schedules/${id}/pause`, undefined],
        ['POST', `/api/v1/agent/schedules/${id}/run-now`, undefined],
        ['DELETE', `/api/v1/agent/schedules/${id}`, undefined],
      ] as const) {
        const res = await api(server, method, path, { key: outsider, ...(body ? { body } : {}) });
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      expect(((await api(server, 'GET', '/api/v1/agent/schedules', { key: outsider })).body as { schedules: Json[] }).schedules).toEqual([]);

      const replaced = await api(server, 'PUT', `/api/v1/agent/schedules/${id}`, {
        key: server.adminKey,
        body: { name: 'weekly', cron_schedule: '0 9 * * 1', prompt: 'echo weekly', enabled: true },
      });
      expect(replaced.status, JSON.stringify(replaced.body)).toBe(200);
      // A full replace of the spec's fields; our extensions keep their values when omitted.
      expect(replaced.body).toMatchObject({ name: 'weekly', cron_schedule: '0 9 * * 1', timezone: 'Europe/Berlin', overlap_policy: 'skip', agent_config: {} });
      const badPut = await api(server, 'PUT', `/api/v1/agent/schedules/${id}`, { key: server.adminKey, body: { name: 'weekly', cron_schedule: '0 9 * * 1', prompt: 'p' } });
      expect(badPut.status).toBe(400);
      expect(String((badPut.body as Json).detail)).toMatch(/enabled/);

      const paused = (await api(server, 'POST', `/api/v1/agent/schedules/${id}/pause`, { key: server.adminKey })).body as Json;
      expect(paused.enabled).toBe(false);
      expect((paused.history as Json).next_run).toBeNull();
      const resumed = (await api(server, 'POST', `/api/v1/agent/schedules/${id}/resume`, { key: server.adminKey })).body as Json;
      expect(resumed.enabled).toBe(true);
      expect(Date.parse(String((resumed.history as Json).next_run))).toBeGreaterThan(Date.now());

      expect((await api(server, 'DELETE', `/api/v1/agent/schedules/${id}`, { key: server.adminKey })).body).toEqual({ success: true });
      expect((await api(server, 'GET', `/api/v1/agent/schedules/${id}`, { key: server.adminKey })).status).toBe(404);
    });

    it('run-now spawns a SCHEDULED_AGENT run that carries the schedule, sees OZ_SCHEDULE_ID and team secrets but never personal ones, and filters by --schedule', async () => {
      for (const body of [
        { name: 'TEAM_KEY', value: 'team-value-123456' },
        { name: 'MY_KEY', value: 'personal-value-123456', team: false },
      ]) {
        expect((await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body })).status).toBe(201);
      }
      const prompt = 'echo "schedule=$OZ_SCHEDULE_ID team=${TEAM_KEY:+set} personal=${MY_KEY:+set}."';
      // Both named in the run's list: the personal one is still left out, and reported as unknown.
      const s = (await create({ ...VALID, name: 'by-hand', prompt, agent_config: { harness: { type: 'command' }, secrets: ['TEAM_KEY', 'MY_KEY'] } })).body as Json;
      const now = await api(server, 'POST', `/api/v1/agent/schedules/${String(s.id)}/run-now`, { key: server.adminKey });
      expect(now.status, JSON.stringify(now.body)).toBe(200);
      const runId = String((now.body as Json).run_id);
      const run = await until(
        'the run-now run to finish',
        async () => {
          const body = (await api(server, 'GET', `/api/v1/agent/runs/${runId}`, { key: server.adminKey })).body as Json;
          return TERMINAL.includes(String(body.state)) ? body : null;
        },
        30_000,
      );
      expect(run).toMatchObject({ state: 'SUCCEEDED', source: 'SCHEDULED_AGENT', schedule: { schedule_id: s.id, schedule_name: 'by-hand', cron_schedule: '0 3 * * *' } });
      const conversation = await api(server, 'GET', `/api/v1/agent/runs/${runId}/conversation`, { key: server.adminKey });
      const text = JSON.stringify(conversation.body);
      expect(text, text).toContain(`schedule=${String(s.id)} team=set personal=.`);

      const listed = await runOz(['run', 'list', '--schedule', String(s.id), '--output-format', 'json'], server.cliEnv);
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { runs: Json[] }).runs.map((r) => r.run_id)).toEqual([runId]);
    });
  });
}

const pgUrl = await resolveTestPostgres();
describeSchedulesOn('sqlite', null);
describeSchedulesOn('postgres', pgUrl);

describe('oz schedule on a running server, in real time', () => {
  let server: OzServerHandle;
  beforeAll(async () => {
    server = await startOzServer('sqlite');
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it('usage mistakes exit 2 naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['schedule', 'create', '--cron', '* * * * *', '-p', 'x'], /--name: required/],
      [['schedule', 'create', '--name', 'n', '-p', 'x'], /--cron: required/],
      [['schedule', '--name', 'n', '--cron', '* * * * *', '-p', 'x', '--overlap', 'never'], /--overlap/],
      [['schedule', 'create', '--name', 'n', '--cron', '* * * * *', '-p', 'x', '--team', '--personal'], /--team and --personal/],
    ];
    for (const [args, message] of cases) {
      const res = await runOz(args, server.cliEnv);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(message);
    }
    const bad = await runOz(['schedule', '--name', 'n', '--cron', '0 0 * * * *', '-p', 'x'], server.cliEnv);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cron_schedule: must have exactly five fields/);
  });

  it('a "* * * * *" command schedule fires within about a minute, succeeds, and `oz schedule list` shows it as last ran', async () => {
    // The bare form means create, as Oz.
    const created = await runOz(
      ['schedule', '--name', 'every-minute', '--cron', '* * * * *', '--harness', 'command', '-p', 'echo scheduled-output', '--output-format', 'json'],
      server.cliEnv,
    );
    expect(created.code, created.stderr).toBe(0);
    const id = String((JSON.parse(created.stdout) as Json).id);

    const lastRun = await until(
      'the first scheduled run to succeed',
      async () => {
        const s = (await api(server, 'GET', `/api/v1/agent/schedules/${id}`, { key: server.adminKey })).body as Json;
        const last = s.last_run as Json | null;
        return last && last.state === 'SUCCEEDED' ? last : null;
      },
      75_000,
    );
    const listed = await runOz(['schedule', 'list'], server.cliEnv);
    expect(listed.code, listed.stderr).toBe(0);
    const row = listed.stdout.split('\n').find((line) => line.includes(id)) ?? '';
    expect(row).toContain('* * * * * (Every minute)');
    expect(row).toContain(`${String(lastRun.run_id)} SUCCEEDED`);

    const paused = await runOz(['schedule', 'pause', id], server.cliEnv);
    expect(paused.code, paused.stderr).toBe(0);
    const shown = await runOz(['schedule', 'get', id], server.cliEnv);
    expect(shown.stdout).toMatch(/PAUSED: yes/);
    const deleted = await runOz(['schedule', 'delete', id], server.cliEnv);
    expect(deleted.code, deleted.stderr).toBe(0);
  }, 120_000);
});
