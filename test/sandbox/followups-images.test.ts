import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../support/busybox-image.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { executionEnded, sendFollowup } from '../support/followups.js';
import { imageBackends } from '../support/container-engine.js';
import { push, TestRegistry } from '../worker/images/registry-fixture.js';

type Json = Record<string, unknown>;
const BACKENDS = imageBackends();

/**
 * Follow-ups on an image (docs/design.md "Follow-ups and executions"), on
 * each backend that runs images: the workspace snapshot is made and unpacked
 * by the platform's own tools (a busybox image has no git, no tar of GNU's),
 * and an idle sandbox is the same container or jail, its /tmp included.
 */
describe.each(BACKENDS)('follow-ups on an image on the $backend backend', ({ backend, missing }) => {
  if (missing !== null) return void it.skip(`needs what this host lacks: ${missing}`, () => {});
  let dir = '';
  let registry: TestRegistry;
  let server: OzServerHandle;
  let envId = '';
  let bare = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-followup-image-'));
    chmodSync(dir, 0o755);
    registry = await TestRegistry.start(join(dir, 'registry'));
    const built = buildBusyboxImage(join(dir, 'image'), {});
    const image = `${registry.address}/oz-test/busybox:followups`;
    push(built.reference, image);
    const repos = join(dir, 'repos');
    const url = makeBareRepo(repos, 'app', { 'README.md': '# app\n' });
    bare = join(repos, 'app.git');
    server = await startOzServer('sqlite', {
      args: ['--backend', backend],
      env: { OZ_FILE_REPO_ROOTS: repos, OZ_KILL_GRACE_MS: '500', OZ_TEAM_MAX_CONCURRENT_RUNS: '10', OZ_REGISTRY_ALLOWED_HOSTS: '127.0.0.1' },
    });
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'followups-image', docker_image: image, repos: [{ url }] } });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    envId = (env.body as { uid: string }).uid;
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await registry?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const start = async (prompt: string, config: Json = {}): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt, config: { harness: { type: 'command' }, environment_id: envId, ...config } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { run_id: string }).run_id;
  };
  const ended = (id: string, n: number): Promise<Json> => executionEnded(server, id, n);
  const followUp = async (id: string, message: string): Promise<void> => void (await sendFollowup(server, id, message));
  const reasons = async (id: string): Promise<unknown[]> => (await runEvents(server.storeSpec, id)).events.filter((e) => e.type === 'notice').map((e) => e.data.reason);

  it('the next execution restores what the last one left, on an image without git', async () => {
    const id = await start('echo draft > notes.txt && rm README.md && echo kept > ../outside.txt && exit 2');
    expect((await ended(id, 1)).state).toBe('FAILED');
    await followUp(id, 'cat notes.txt ../outside.txt && test ! -e README.md && echo "readme still gone"');
    const second = await ended(id, 2);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    expect((await runEvents(server.storeSpec, id)).output).toContain('draft\nkept\nreadme still gone\n');
    expect(await reasons(id)).toContain('workspace_snapshot_restored');
    // Published as one change on the run's branch: the new file, the deletion.
    expect(git(bare, 'show', `oz/${id}:notes.txt`)).toBe('draft\n');
    expect(() => git(bare, 'show', `oz/${id}:README.md`)).toThrow();
  });

  it('with an idle timeout the follow-up runs in the same sandbox', async () => {
    const id = await start('echo "same sandbox" > /tmp/marker', { idle_timeout_minutes: 2 });
    const first = await ended(id, 1);
    expect(first.state, JSON.stringify(first.status_message)).toBe('SUCCEEDED');
    expect(first.is_sandbox_running).toBe(true);
    await followUp(id, 'cat /tmp/marker');
    const second = await ended(id, 2);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    expect((await runEvents(server.storeSpec, id)).output).toContain('same sandbox');
    expect(await reasons(id)).toContain('idle_sandbox_resumed');
    // Cancel ends the idle sandbox it left again.
    expect((await api(server, 'POST', `/api/v1/agent/runs/${id}/cancel`, { key: server.adminKey })).status).toBe(200);
  });
});
