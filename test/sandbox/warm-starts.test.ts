import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../support/busybox-image.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { until } from '../support/until.js';
import { imageBackends } from '../support/container-engine.js';
import { push, TestRegistry } from '../worker/images/registry-fixture.js';

type Json = Record<string, unknown>;
type Event = { type: string; data: Json };
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const BACKENDS = imageBackends();

const reasons = (events: Event[]): unknown[] => events.filter((e) => e.type === 'notice').map((e) => e.data.reason);
const setupCommandsRun = (events: Event[]): unknown[] =>
  events.filter((e) => e.type === 'setup' && e.data.status === 'started' && typeof e.data.index === 'number').map((e) => e.data.command);

/**
 * Warm starts, end to end (docs/sandboxes.md "Warm starts"): the first run of
 * an environment keeps what setup left (the workspace and, on an image, the
 * run's writable layer); the next run with the same key starts from it,
 * moves its repositories to their branches' commits and runs only the
 * maintenance commands. A changed key part, another team, or a setup-only
 * secret found in what setup left: a cold start.
 */
describe.each(BACKENDS)('warm starts on the $backend backend', ({ backend, missing }) => {
  if (missing !== null) return void it.skip(`needs what this host lacks: ${missing}`, () => {});
  let dir = '';
  let repos = '';
  let registry: TestRegistry;
  let server: OzServerHandle;
  let image = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-warm-'));
    chmodSync(dir, 0o755);
    registry = await TestRegistry.start(join(dir, 'registry'));
    const built = buildBusyboxImage(join(dir, 'image'), { env: ['PATH=/usr/local/bin:/bin'] });
    image = `${registry.address}/oz-test/busybox:warm`;
    push(built.reference, image);
    repos = join(dir, 'repos');
    server = await startOzServer('sqlite', {
      args: ['--backend', backend],
      env: { OZ_FILE_REPO_ROOTS: repos, OZ_KILL_GRACE_MS: '500', OZ_TEAM_MAX_CONCURRENT_RUNS: '10', OZ_REGISTRY_ALLOWED_HOSTS: '127.0.0.1' },
    });
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await registry?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const createEnvironment = async (body: Json, key = server.adminKey): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key, body: { name: `env-${Math.random().toString(36).slice(2, 8)}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const run = async (prompt: string, environmentId: string, key = server.adminKey): Promise<{ run: Json; output: string; events: Event[] }> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key, body: { prompt, config: { harness: { type: 'command' }, environment_id: environmentId } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const result = await until(`run ${id} to end`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    return { run: result, output, events: events };
  };
  const newTeamKey = async (): Promise<string> => {
    const name = `team-${Math.random().toString(36).slice(2, 10)}`;
    expect((await api(server, 'POST', '/api/v1/admin/teams', { key: server.adminKey, body: { name } })).status).toBe(201);
    const user = await api(server, 'POST', '/api/v1/admin/users', { key: server.adminKey, body: { email: `${name}@example.test`, team: name } });
    const key = await api(server, 'POST', `/api/v1/admin/users/${(user.body as { uid: string }).uid}/api-keys`, { key: server.adminKey, body: { name: 'k' } });
    return (key.body as { key: string }).key;
  };

  const SETUP = [
    "mkdir -p /usr/local/bin && printf '#!/bin/sh\\necho warm tool\\n' > /usr/local/bin/warmtool && chmod 755 /usr/local/bin/warmtool",
    'echo installed > deps.txt && echo "setup ran"',
  ];
  const PROMPT = 'warmtool && cat deps.txt && cat README.md && test ! -e .oz/clone.gitconfig.stale && echo done';

  it('the second run starts from the first one’s snapshot: setup skipped, repositories at their new commit, the image layer and workspace restored', async () => {
    const url = makeBareRepo(repos, 'warm-app', { 'README.md': 'version 1\n' });
    const envId = await createEnvironment({ docker_image: image, repos: [{ url }], setup_commands: SETUP });
    const cold = await run(PROMPT, envId);
    expect(cold.run.state, JSON.stringify(cold.run.status_message)).toBe('SUCCEEDED');
    expect(reasons(cold.events)).toContain('snapshot_saved');
    expect(reasons(cold.events)).not.toContain('snapshot_restored');
    expect(setupCommandsRun(cold.events)).toEqual(SETUP);
    expect(cold.output).toContain('warm tool');
    expect(cold.output).toContain('version 1');

    // A new commit on the branch: the warm run must work on it, not on the snapshot's.
    const work = join(repos, 'warm-app-work');
    writeFileSync(join(work, 'README.md'), 'version 2\n');
    git(work, 'commit', '--quiet', '-am', 'version 2');
    git(work, 'push', '--quiet', join(repos, 'warm-app.git'), 'main');

    const warm = await run(PROMPT, envId);
    expect(warm.run.state, JSON.stringify(warm.run.status_message)).toBe('SUCCEEDED');
    expect(reasons(warm.events)).toContain('snapshot_restored');
    expect(reasons(warm.events)).not.toContain('snapshot_saved');
    expect(setupCommandsRun(warm.events)).toEqual([]);
    expect(warm.output).toContain('warm tool'); // installed into the image layer by the first run's setup
    expect(warm.output).toContain('installed'); // an untracked file setup left in the repository
    expect(warm.output).toContain('version 2');
    expect(warm.output).not.toContain('version 1');
    const restored = warm.events.find((e) => e.data.reason === 'snapshot_restored');
    expect(restored?.data.snapshot).toMatchObject({ hits: 1 });
    expect(String(restored?.data.message)).toContain('setup skipped');
  });

  it('a changed variable, another team, or a host run of the same setup each start cold', async () => {
    const url = makeBareRepo(repos, 'cold-app', { 'README.md': 'cold\n' });
    const base = { docker_image: image, repos: [{ url }], setup_commands: SETUP };
    const first = await run(PROMPT, await createEnvironment({ ...base, env: { MODE: 'a' } }));
    expect(reasons(first.events)).toContain('snapshot_saved');

    const changed = await run(PROMPT, await createEnvironment({ ...base, env: { MODE: 'b' } }));
    expect(changed.run.state).toBe('SUCCEEDED');
    expect(reasons(changed.events)).not.toContain('snapshot_restored');
    expect(setupCommandsRun(changed.events)).toEqual(SETUP);

    const again = await run(PROMPT, await createEnvironment({ ...base, env: { MODE: 'a' } }));
    expect(reasons(again.events)).toContain('snapshot_restored');

    const otherTeam = await newTeamKey();
    const theirs = await run(PROMPT, await createEnvironment({ ...base, env: { MODE: 'a' } }, otherTeam), otherTeam);
    expect(theirs.run.state, JSON.stringify(theirs.run.status_message)).toBe('SUCCEEDED');
    expect(reasons(theirs.events)).not.toContain('snapshot_restored');
    expect(setupCommandsRun(theirs.events)).toEqual(SETUP);
  });

  it('on the host system too: the workspace setup left comes back', async () => {
    const url = makeBareRepo(repos, 'host-app', { 'README.md': 'host\n' });
    const envId = await createEnvironment({ repos: [{ url }], setup_commands: ['echo built > build.out && echo "setup ran"'] });
    const cold = await run('cat build.out', envId);
    expect(reasons(cold.events)).toContain('snapshot_saved');
    const warm = await run('cat build.out && echo "in $(pwd)"', envId);
    expect(warm.run.state, JSON.stringify(warm.run.status_message)).toBe('SUCCEEDED');
    expect(reasons(warm.events)).toContain('snapshot_restored');
    expect(warm.output).toContain('built');
    expect(warm.output).toMatch(/in \/workspace\/host-app/);
  });

  it('runs the maintenance commands in every run, after setup cold and after the restore warm, and --no-snapshot starts cold', async () => {
    const url = makeBareRepo(repos, 'maint-app', { 'README.md': 'maint\n' });
    const envId = await createEnvironment({
      repos: [{ url }],
      setup_commands: ['echo slow-setup > setup.out'],
      maintenance_commands: ['echo "maintained $(cat setup.out)" > /tmp/maintained'],
    });
    const cold = await run('cat /tmp/maintained', envId);
    expect(cold.run.state, JSON.stringify(cold.run.status_message)).toBe('SUCCEEDED');
    expect(setupCommandsRun(cold.events)).toEqual(['echo slow-setup > setup.out', 'echo "maintained $(cat setup.out)" > /tmp/maintained']);
    expect(cold.output).toContain('maintained slow-setup');
    const warm = await run('cat /tmp/maintained', envId);
    expect(reasons(warm.events)).toContain('snapshot_restored');
    expect(setupCommandsRun(warm.events)).toEqual(['echo "maintained $(cat setup.out)" > /tmp/maintained']);
    expect(warm.output).toContain('maintained slow-setup');

    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: 'true', config: { harness: { type: 'command' }, environment_id: envId, snapshot: false } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    await until('the cold run to end', async () =>
      TERMINAL.includes(String(((await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json).state)),
    );
    const forced = (await runEvents(server.storeSpec, id)).events as Event[];
    expect(reasons(forced)).not.toContain('snapshot_restored');
    expect(reasons(forced)).not.toContain('snapshot_saved');
    expect(setupCommandsRun(forced)[0]).toBe('echo slow-setup > setup.out');
  });

  it('keeps no snapshot holding a setup-only secret', async () => {
    const created = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'NPM_TOKEN', value: 'setup-only-token-123', setup_only: true } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const url = makeBareRepo(repos, 'secret-app', { 'README.md': 'secret\n' });
    const envId = await createEnvironment({ repos: [{ url }], secrets: ['NPM_TOKEN'], setup_commands: ['echo "//registry/:_authToken=$NPM_TOKEN" > .npmrc'] });
    const first = await run('true', envId);
    expect(first.run.state).toBe('SUCCEEDED');
    expect(reasons(first.events)).toContain('snapshot_skipped');
    const second = await run('true', envId);
    expect(reasons(second.events)).not.toContain('snapshot_restored');
    // In the forms the redactor knows too: base64, as npm's _auth holds it.
    const encoded = await createEnvironment({ repos: [{ url }], secrets: ['NPM_TOKEN'], setup_commands: ['echo "_auth=$(printf %s "$NPM_TOKEN" | base64)" > .npmrc'] });
    expect(reasons((await run('true', encoded)).events)).toContain('snapshot_skipped');
  });
});
