import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;
type Event = { type: string; data: Json };
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const reasons = (events: Event[]): unknown[] => events.filter((e) => e.type === 'notice').map((e) => e.data.reason);
const asRoot = process.getuid?.() === 0;

/**
 * Spare sandboxes, end to end (docs/design.md "Spare sandboxes"): once a run
 * is under way its worker starts a sandbox shaped like the environment's next
 * run's, and that run takes it. What a spare is made from never crosses a
 * team, a changed environment, or another run's leftovers.
 */
describe.skipIf(!bwrapInstalled() || !asRoot)('spare sandboxes, end to end (bwrap, root)', () => {
  let dir = '';
  let repos = '';
  let server: OzServerHandle;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-spare-runs-'));
    chmodSync(dir, 0o755);
    repos = join(dir, 'repos');
    server = await startOzServer('sqlite', {
      args: ['--backend', 'bwrap'],
      env: { OZ_FILE_REPO_ROOTS: repos, OZ_LOG_LEVEL: 'info', OZ_TEAM_MAX_CONCURRENT_RUNS: '10', OZ_SPARE_SANDBOXES: '2' },
    });
  });
  afterAll(async () => {
    try {
      const pid = server?.pid;
      expect(await server?.stop()).toBe(0);
      // The drain tore the spares down: no sandbox directory, no support directory left.
      if (pid) expect(existsSync(join(tmpdir(), 'oz-sandboxes', `w${pid}`))).toBe(false);
      const support = join(dirname(server.dataDir), 'cache', 'support');
      if (existsSync(support)) expect(readdirSync(support)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const createEnvironment = async (body: Json, key = server.adminKey): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key, body: { name: `env-${Math.random().toString(36).slice(2, 8)}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const run = async (prompt: string, environmentId: string, key = server.adminKey): Promise<{ id: string; run: Json; output: string; events: Event[]; spare: boolean }> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key, body: { prompt, config: { harness: { type: 'command' }, environment_id: environmentId } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const result = await until(`run ${id} to end`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    const spare = server
      .logs()
      .split('\n')
      .some((line) => line.includes(id) && line.includes('started in a spare sandbox'));
    return { id, run: result, output, events, spare };
  };
  const newTeamKey = async (): Promise<string> => {
    const name = `team-${Math.random().toString(36).slice(2, 10)}`;
    expect((await api(server, 'POST', '/api/v1/admin/teams', { key: server.adminKey, body: { name } })).status).toBe(201);
    const user = await api(server, 'POST', '/api/v1/admin/users', { key: server.adminKey, body: { email: `${name}@example.test`, team: name } });
    const key = await api(server, 'POST', `/api/v1/admin/users/${(user.body as { uid: string }).uid}/api-keys`, { key: server.adminKey, body: { name: 'k' } });
    return (key.body as { key: string }).key;
  };
  /** Give the worker the moment it needs to start the spare the last run asked for. */
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1500));

  const SETUP = ['echo installed > deps.txt'];
  // What a run leaves where the next run's sandbox must not see it: in the repository, /tmp and a process.
  const LEAVE = 'echo left > leftover.txt; echo left > /tmp/leftover; (sleep 300 &) ; cat deps.txt README.md';
  const CHECK = 'cat deps.txt README.md; ls /tmp; test -e leftover.txt && echo SAW-LEFTOVER; pgrep -f "sleep 300" >/dev/null && echo SAW-PROCESS; id -u';

  it('the next run of an environment starts in the spare: on the snapshot, at the branch’s new commit, with nothing the last run left', async () => {
    const url = makeBareRepo(repos, 'spare-app', { 'README.md': 'version 1\n' });
    const envId = await createEnvironment({ repos: [{ url }], setup_commands: SETUP });
    const cold = await run(LEAVE, envId);
    expect(cold.run.state, JSON.stringify(cold.run.status_message)).toBe('SUCCEEDED');
    expect(reasons(cold.events)).toContain('snapshot_saved');
    expect(cold.spare).toBe(false);
    await settle();

    // A push after the spare started (its mirror is bound already): the run must still work on the new commit.
    const work = join(repos, 'spare-app-work');
    writeFileSync(join(work, 'README.md'), 'version 2\n');
    git(work, 'commit', '--quiet', '-am', 'version 2');
    git(work, 'push', '--quiet', join(repos, 'spare-app.git'), 'main');

    const warm = await run(CHECK, envId);
    expect(warm.run.state, JSON.stringify(warm.run.status_message)).toBe('SUCCEEDED');
    expect(warm.spare).toBe(true);
    expect(reasons(warm.events)).toContain('snapshot_restored');
    expect(warm.output).toContain('installed');
    expect(warm.output).toContain('version 2');
    expect(warm.output).not.toContain('version 1');
    expect(warm.output).not.toContain('SAW-');
    expect(warm.output).not.toContain('leftover');
    expect(warm.output).toContain('1000');

    // Used once: the run after it takes the spare made while this one ran, not the same sandbox.
    await settle();
    const third = await run('echo third > third.txt; cat README.md', envId);
    expect(third.run.state).toBe('SUCCEEDED');
    expect(third.spare).toBe(true);
    await settle();
    const fourth = await run('test -e third.txt && echo SAW-THIRD; cat README.md', envId);
    expect(fourth.spare).toBe(true);
    expect(fourth.output).not.toContain('SAW-THIRD');
    expect(fourth.output).toContain('version 2');
  });

  it('another team’s identical environment, or a changed one, never takes the spare', async () => {
    const url = makeBareRepo(repos, 'spare-shared', { 'README.md': 'shared\n' });
    const envId = await createEnvironment({ repos: [{ url }], setup_commands: SETUP });
    expect((await run('true', envId)).run.state).toBe('SUCCEEDED');
    await settle(); // a spare of this environment's shape waits now

    const otherTeam = await newTeamKey();
    const theirs = await run(CHECK, await createEnvironment({ repos: [{ url }], setup_commands: SETUP }, otherTeam), otherTeam);
    expect(theirs.run.state, JSON.stringify(theirs.run.status_message)).toBe('SUCCEEDED');
    expect(theirs.spare).toBe(false);
    expect(reasons(theirs.events)).not.toContain('snapshot_restored');

    // A changed setup is another snapshot key: the waiting spare (on the old snapshot) is not it.
    const updated = await api(server, 'PATCH', `/api/v1/agent/environments/${envId}`, { key: server.adminKey, body: { setup_commands: ['echo changed > deps.txt'] } });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    const changed = await run('cat deps.txt', envId);
    expect(changed.run.state, JSON.stringify(changed.run.status_message)).toBe('SUCCEEDED');
    expect(changed.spare).toBe(false);
    expect(changed.output).toContain('changed');
    expect(reasons(changed.events)).not.toContain('snapshot_restored');

    // And without repositories, a spare is still per team and per shape.
    const bare = await createEnvironment({});
    expect((await run('true', bare)).spare).toBe(false);
    await settle();
    expect((await run('true', bare)).spare).toBe(true);
  });
});
