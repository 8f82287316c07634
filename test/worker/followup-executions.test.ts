import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, startOzWorker, type OzServerHandle, type OzWorkerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { until } from '../support/until.js';
import { executionEnded, sendFollowup } from '../support/followups.js';

type Json = Record<string, unknown>;

/**
 * Executions across workers (docs/design.md "Follow-ups and executions"): a
 * sandbox kept idle for a follow-up, and the run's invariants when a worker
 * dies during a follow-up's execution. Standalone `oz worker` processes
 * against a server without its own.
 */
describe('follow-up executions on standalone workers', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let repoUrl: string;
  let bare: string;
  let token: string;
  let envId: string;
  const workers: OzWorkerHandle[] = [];

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-followup-exec-'));
    chmodSync(fixtures, 0o755);
    repoUrl = makeBareRepo(fixtures, 'app', { 'README.md': '# app\n' });
    bare = join(fixtures, 'app.git');
    server = await startOzServer('sqlite', {
      args: ['--no-worker'],
      env: { OZ_FILE_REPO_ROOTS: fixtures, OZ_LEASE_TTL_MS: '4000', OZ_SWEEP_INTERVAL_MS: '300', OZ_TEAM_MAX_CONCURRENT_RUNS: '20' },
    });
    const created = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: 'followup-workers' } });
    token = (created.body as { token: string }).token;
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'followup-exec', repos: [{ url: repoUrl }] } });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    envId = (env.body as { uid: string }).uid;
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.kill();
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      rmSync(fixtures, { recursive: true, force: true });
    }
  });

  const worker = async (name: string): Promise<OzWorkerHandle> => {
    const w = await startOzWorker(server, token, { OZ_FILE_REPO_ROOTS: fixtures }, ['--name', name]);
    workers.push(w);
    return w;
  };
  const start = async (prompt: string, config: Json = {}): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt, config: { environment_id: envId, harness: { type: 'command' }, ...config } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { run_id: string }).run_id;
  };
  const get = async (id: string): Promise<Json> => (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
  const ended = (id: string, n: number): Promise<Json> => executionEnded(server, id, n);
  const followUp = async (id: string, message: string): Promise<void> => void (await sendFollowup(server, id, message));
  const reasons = async (id: string): Promise<string[]> => (await runEvents(server.storeSpec, id)).events.filter((e) => e.type === 'notice').map((e) => String(e.data.reason));

  it('with an idle timeout the follow-up resumes in the same sandbox (nothing restored); a cancel tears it down and the next one restores', async () => {
    await worker('idle-a');
    // /tmp is the sandbox's own: only the same sandbox still has it.
    // The init's start time (field 22 of its stat): the same number only for the same process.
    const INIT = "cut -d' ' -f22 /proc/$PPID/stat";
    const id = await start(`echo "from execution 1" > /tmp/marker && echo draft > notes.txt && ${INIT} > /tmp/init && { sleep 300 & echo $! > /tmp/bg; }`, {
      idle_timeout_minutes: 5,
    });
    const first = await ended(id, 1);
    expect(first.state, JSON.stringify(first.status_message)).toBe('SUCCEEDED');
    expect(first.is_sandbox_running).toBe(true);

    // Nothing of execution 1 ran on while the sandbox waited: its background process is gone.
    await followUp(
      id,
      `cat /tmp/marker; kill -0 "$(cat /tmp/bg)" 2>/dev/null && echo "still running" || echo "background gone"; [ "$(${INIT})" = "$(cat /tmp/init)" ] && echo "same init"`,
    );
    const second = await ended(id, 2);
    expect(second.state, JSON.stringify(second.status_message)).toBe('SUCCEEDED');
    const { output } = await runEvents(server.storeSpec, id);
    expect(output).toContain('from execution 1\nbackground gone\nsame init');
    const afterTwo = await reasons(id);
    expect(afterTwo).toContain('idle_sandbox_resumed');
    expect(afterTwo).not.toContain('workspace_snapshot_restored');
    // The run's branch was pushed by execution 1; a resume clones nothing and says nothing of it.
    expect(afterTwo).not.toContain('run_branch_missing');
    // Both executions on the same worker.
    const executions = second.executions as { worker: { name: string } | null }[];
    expect(executions.map((e) => e.worker?.name)).toEqual(['idle-a', 'idle-a']);

    // A cancel of the ended run ends its idle sandbox.
    const cancel = await api(server, 'POST', `/api/v1/agent/runs/${id}/cancel`, { key: server.adminKey });
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    await until('the idle sandbox to go', async () => ((await get(id)).is_sandbox_running === false ? true : null));
    await followUp(id, 'test ! -e /tmp/marker && cat notes.txt');
    const third = await ended(id, 3);
    expect(third.state, JSON.stringify(third.status_message)).toBe('SUCCEEDED');
    expect((await runEvents(server.storeSpec, id)).output).toContain('draft');
    expect(await reasons(id)).toContain('workspace_snapshot_restored');
  });

  it('a worker killed during a follow-up execution: that execution ends ERROR, the first keeps its outcome, events stay gap-free, and the next follow-up runs on another worker', async () => {
    const first = await worker('kill-a');
    const marker = `33.${randomBytes(3).readUIntBE(0, 3)}`;
    const id = await start('echo one > one.txt');
    expect((await ended(id, 1)).state).toBe('SUCCEEDED');
    await followUp(id, `echo two > two.txt; sleep ${marker}`);
    await until('the follow-up to run', async () => ((await get(id)).state === 'INPROGRESS' ? true : null));
    first.signal('SIGKILL');
    await first.exited;
    const lost = await ended(id, 2);
    expect(lost.state).toBe('ERROR');
    expect(lost.status_message).toMatchObject({ reason: 'worker_lost' });
    expect((lost.executions as Json[]).map((e) => e.state)).toEqual(['SUCCEEDED', 'ERROR']);
    expect(lost.is_sandbox_running).toBe(false);

    await worker('kill-b');
    await followUp(id, 'cat one.txt; test ! -e two.txt && echo "two is gone"');
    const third = await ended(id, 3);
    expect(third.state, JSON.stringify(third.status_message)).toBe('SUCCEEDED');
    const executions = third.executions as { state: string; worker: { name: string } | null }[];
    expect(executions.map((e) => [e.state, e.worker?.name])).toEqual([
      ['SUCCEEDED', 'kill-a'],
      ['ERROR', 'kill-a'],
      ['SUCCEEDED', 'kill-b'],
    ]);
    const { events, output } = await runEvents(server.storeSpec, id);
    expect(output).toContain('one\ntwo is gone');
    // One gap-free sequence across the executions.
    const seqs = events.map((e) => (e as unknown as { seq: number }).seq);
    expect(seqs).toEqual(seqs.map((_s, i) => i + 1));
    // Never two live executions: each execution's state events start at QUEUED after the one before ended.
    const states = events.filter((e) => e.type === 'state').map((e) => `${String(e.data.from)}>${String(e.data.to)}`);
    expect(states.filter((s) => s.endsWith('>QUEUED'))).toEqual(['null>QUEUED', 'SUCCEEDED>QUEUED', 'ERROR>QUEUED']);
    expect(git(bare, 'show', `oz/${id}:one.txt`)).toBe('one\n');
  });
});
