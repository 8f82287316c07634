import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/core/run.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { openFromSpec } from '../support/store-factories.js';
import { api, runOz, startOzServer, startOzWorker, type Backend, type OzServerHandle, type OzWorkerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;

/** PIDs of processes whose command line contains `marker` (to prove none survive, and to clean up by PID). */
function pidsWith(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The run lifecycle with real processes: `oz server` (embedded worker or
 * --no-worker), standalone `oz worker`s, the CLI, and checks read from the store.
 */
export function describeLifecycleContract(backend: Backend, pgUrl?: string): void {
  const pg = pgUrl ? { pgUrl } : {};

  describe(`runs with the embedded worker on ${backend}`, () => {
    let server: OzServerHandle;
    beforeAll(async () => {
      server = await startOzServer(backend, { ...pg, env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '20', OZ_MAX_OUTPUT_BYTES: '4096' } });
    });
    afterAll(async () => {
      expect(await server?.stop()).toBe(0);
    });
    const create = async (prompt: string, config: Json = {}): Promise<string> => {
      const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt, config: { harness: { type: 'command' }, ...config } } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return (res.body as { run_id: string }).run_id;
    };
    const get = async (id: string): Promise<Json> => (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;

    it('a command run succeeds, its output is in the conversation in order, and --wait exits 0', async () => {
      const result = await runOz(
        ['agent', 'run-cloud', '--harness', 'command', '-p', 'for i in 1 2 3; do echo "line $i"; done; echo warn >&2; echo "id=$OZ_RUN_ID"', '--wait', '--output-format', 'text'],
        server.cliEnv,
      );
      expect(result.code, result.stderr).toBe(0);
      const [runId, state] = result.stdout.trim().split('\n').at(-1)?.split('\t') ?? [];
      expect(state).toBe('SUCCEEDED');
      const conversation = (await api(server, 'GET', `/api/v1/agent/runs/${runId}/conversation`, { key: server.adminKey })).body as {
        steps: { messages: { content: { type: string; name?: string; data?: { stream?: string; text?: string } }[] }[] }[];
      };
      const blocks = conversation.steps[0]?.messages.flatMap((m) => m.content) ?? [];
      const stdout = blocks
        .filter((b) => b.name === 'output' && b.data?.stream === 'stdout')
        .map((b) => b.data?.text)
        .join('');
      expect(stdout).toBe(`line 1\nline 2\nline 3\nid=${runId}\n`);
      expect(blocks.some((b) => b.name === 'output' && b.data?.stream === 'stderr' && b.data.text === 'warn\n')).toBe(true);
      const states = blocks.filter((b) => b.name === 'state_changed').map((b) => (b.data as { to: string }).to);
      expect(states).toEqual(['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS', 'SUCCEEDED']);
      const failed = await runOz(['agent', 'run-cloud', '--harness', 'command', '-p', 'exit 7', '--wait'], server.cliEnv);
      expect(failed.code).toBe(1);
      expect(failed.stdout).toContain('ended failed: The command exited with code 7.');
    });

    it('cancel during sleep 600 ends CANCELLED within 3 s and no process of the run survives', async () => {
      const marker = `600.${randomBytes(3).readUIntBE(0, 3)}`;
      const runId = await create(`sleep ${marker} & sleep ${marker}; echo never`);
      await until('the run to start', async () => (await get(runId)).state === 'INPROGRESS');
      await until('its processes', async () => pidsWith(`sleep ${marker}`).length === 2);
      const started = Date.now();
      const cancel = await api(server, 'POST', `/api/v1/agent/runs/${runId}/cancel`, { key: server.adminKey });
      expect(cancel.status).toBe(200);
      const final = await until('CANCELLED', async () => {
        const run = await get(runId);
        return run.state === 'CANCELLED' ? run : null;
      });
      const tookMs = Date.now() - started;
      expect(tookMs).toBeLessThan(3000);
      expect(pidsWith(`sleep ${marker}`)).toEqual([]);
      expect(final.status_message).toMatchObject({ reason: 'cancelled_by_user' });
    });

    it('max runtime ends the run FAILED budget_exceeded / max_runtime_exceeded', async () => {
      const runId = await create('sleep 30', { max_runtime_seconds: 1 });
      const run = await until('the run to end', async () => {
        const r = await get(runId);
        return r.state === 'FAILED' ? r : null;
      });
      expect(run.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'max_runtime_exceeded' });
    });

    it('output is capped per run with a truncation notice', async () => {
      const runId = await create('head -c 100000 /dev/zero | tr "\\0" "x"; echo');
      await until('the run to end', async () => (await get(runId)).state === 'SUCCEEDED');
      const store = await openFromSpec(server.storeSpec);
      try {
        const events = await store.listRunEvents(runId, 0, 1000);
        const text = events
          .filter((e) => e.type === 'output')
          .map((e) => String(e.data.text))
          .join('');
        expect(text.length).toBe(4096);
        expect(events.filter((e) => e.type === 'notice').map((e) => e.data.reason)).toEqual(['output_truncated']);
      } finally {
        await store.close();
      }
    });
  });

  describe(`standalone workers on ${backend}`, () => {
    let server: OzServerHandle;
    let store: SqlStore;
    let token: string;
    const workers: OzWorkerHandle[] = [];
    const markers: string[] = [];

    beforeAll(async () => {
      server = await startOzServer(backend, {
        ...pg,
        args: ['--no-worker'],
        env: { OZ_LEASE_TTL_MS: '4000', OZ_SWEEP_INTERVAL_MS: '300', OZ_TEAM_MAX_CONCURRENT_RUNS: '50' },
      });
      store = await openFromSpec(server.storeSpec);
      const created = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: 'test-workers' } });
      token = (created.body as { token: string }).token;
    });
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.kill();
      // The direct backend cannot take a dead worker's processes with it: end them by PID.
      for (const marker of markers.splice(0)) for (const pid of pidsWith(marker)) process.kill(pid, 'SIGKILL');
    });
    afterAll(async () => {
      await store?.close();
      expect(await server?.stop()).toBe(0);
    });
    const create = async (prompt: string): Promise<string> => {
      const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt, config: { harness: { type: 'command' } } } });
      return (res.body as { run_id: string }).run_id;
    };
    const run = async (id: string): Promise<Run> => (await store.getRunById(id)) as Run;
    const worker = async (env: Record<string, string> = {}, args: string[] = []) => {
      const w = await startOzWorker(server, token, env, args);
      workers.push(w);
      return w;
    };

    it('kill -9 of a worker mid-run: the run ends ERROR worker_lost; nothing stays leased', async () => {
      const marker = `30.${randomBytes(3).readUIntBE(0, 3)}`;
      markers.push(`sleep ${marker}`);
      const w = await worker();
      const runId = await create(`sleep ${marker}`);
      await until('the run to start', async () => (await run(runId)).state === 'INPROGRESS');
      w.signal('SIGKILL');
      await w.exited;
      const final = await until('ERROR', async () => {
        const r = await run(runId);
        return r.state === 'ERROR' ? r : null;
      });
      expect(final.statusMessage).toMatchObject({ error_code: 'resource_unavailable', retryable: true, reason: 'worker_lost' });
      const leased = await store.listRuns({ teamId: final.teamId, filters: { states: ['CLAIMED', 'INPROGRESS', 'BLOCKED'] }, sortBy: 'created_at', sortOrder: 'asc', limit: 10 });
      expect(leased.runs).toEqual([]);
    });

    it('a worker frozen past its lease: its sandbox ends itself while the worker is still frozen', async () => {
      const marker = `40.${randomBytes(3).readUIntBE(0, 3)}`;
      markers.push(`sleep ${marker}`);
      const w = await worker();
      const runId = await create(`sleep ${marker}`);
      await until('the run to start', async () => (await run(runId)).state === 'INPROGRESS');
      await until('its process', () => pidsWith(`sleep ${marker}`).length > 0);
      w.signal('SIGSTOP');
      try {
        // The fence watchdog, not the (frozen) worker, ends the sandbox; then the sweeper resolves the run.
        await until('the sandbox to end itself', () => pidsWith(`sleep ${marker}`).length === 0, 30_000);
        const errored = await until('ERROR', async () => {
          const r = await run(runId);
          return r.state === 'ERROR' ? r : null;
        });
        expect(errored.statusMessage).toMatchObject({ reason: 'worker_lost' });
      } finally {
        w.signal('SIGCONT');
      }
    });

    it("a SIGSTOPped worker's late writes are refused once its lease expired", async () => {
      const w = await worker();
      const runId = await create('sleep 2; echo late');
      await until('the run to start', async () => (await run(runId)).state === 'INPROGRESS');
      w.signal('SIGSTOP');
      const errored = await until('ERROR', async () => {
        const r = await run(runId);
        return r.state === 'ERROR' ? r : null;
      });
      const eventsAtError = errored.lastEventSeq;
      w.signal('SIGCONT');
      // Give the woken worker time to try: heartbeat, events, finish.
      await new Promise((r) => setTimeout(r, 3000));
      const after = await run(runId);
      expect(after.state).toBe('ERROR');
      expect(after.lastEventSeq).toBe(eventsAtError);
      expect((await store.listRunEvents(runId, 0, 100)).some((e) => e.type === 'output')).toBe(false);
    });

    it('SIGTERM drains: a short run finishes, a long one is cancelled with a clear reason, and the worker exits 0', async () => {
      const marker = `600.${randomBytes(3).readUIntBE(0, 3)}`;
      markers.push(`sleep ${marker}`);
      const w = await worker({}, ['--drain-grace-ms', '1500', '--concurrency', '2']);
      const short = await create('sleep 0.5; echo done');
      const long = await create(`sleep ${marker}`);
      await until('both to start', async () => (await run(short)).state === 'INPROGRESS' && (await run(long)).state === 'INPROGRESS');
      w.signal('SIGTERM');
      expect(await w.exited).toBe(0);
      expect((await run(short)).state).toBe('SUCCEEDED');
      const cancelled = await run(long);
      expect(cancelled.state).toBe('CANCELLED');
      expect(cancelled.statusMessage).toMatchObject({ reason: 'worker_draining' });
      expect(cancelled.statusMessage?.message).toContain('drain grace period');
      expect(pidsWith(`sleep ${marker}`)).toEqual([]);
    });

    it('a worker refuses a plain-HTTP server that is not loopback, and a bad token is reported', async () => {
      const refused = await runOz(['worker', '--server', 'http://example.invalid:7420', '--token', token], {});
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('plain HTTP to another machine');
      const bad = await api(server, 'POST', '/api/v1/worker/claim', { key: 'ozw_nope', body: { worker_id: 'x', max_runs: 1, wait_ms: 0 } });
      expect(bad.status).toBe(401);
      const apiKeyAsWorker = await api(server, 'POST', '/api/v1/worker/claim', { key: server.adminKey, body: { worker_id: 'x', max_runs: 1, wait_ms: 0 } });
      expect(apiKeyAsWorker.status).toBe(401);
    });
  });

  describe(`a fleet of standalone workers on ${backend}`, () => {
    // The default 30 s lease: this test is about exactly-once under concurrency,
    // not about fencing, so a loaded machine must not make a worker fence itself.
    let server: OzServerHandle;
    let store: SqlStore;
    const workers: OzWorkerHandle[] = [];
    beforeAll(async () => {
      server = await startOzServer(backend, { ...pg, args: ['--no-worker'], env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '50' } });
      store = await openFromSpec(server.storeSpec);
    });
    afterAll(async () => {
      for (const w of workers) await w.kill();
      await store?.close();
      expect(await server?.stop()).toBe(0);
    });
    const create = async (prompt: string): Promise<string> => {
      const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt, config: { harness: { type: 'command' } } } });
      return (res.body as { run_id: string }).run_id;
    };
    const run = async (id: string): Promise<Run> => (await store.getRunById(id)) as Run;
    const worker = async (env: Record<string, string> = {}, args: string[] = []) => {
      const created = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: `fleet-${workers.length}` } });
      const w = await startOzWorker(server, (created.body as { token: string }).token, env, args);
      workers.push(w);
      return w;
    };

    it('200 runs over 4 workers: each claimed exactly once, all terminal, events gap-free', async () => {
      for (let i = 0; i < 4; i++) await worker({}, ['--concurrency', '4']);
      const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => create(`echo run ${i}`)));
      const teamId = (await run(ids[0] ?? '')).teamId;
      await until(
        'every run to end',
        async () => {
          const open = await store.listRuns({
            teamId,
            filters: { states: ['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS', 'BLOCKED'] },
            sortBy: 'created_at',
            sortOrder: 'asc',
            limit: 500,
          });
          return open.runs.length === 0;
        },
        60_000,
      );
      for (const id of ids) {
        const r = await run(id);
        expect(r.state, JSON.stringify(r.statusMessage)).toBe('SUCCEEDED');
        expect(r.attempt).toBe(1);
        const events = await store.listRunEvents(id, 0, 1000);
        expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
        expect(events.filter((e) => e.type === 'state' && e.data.to === 'CLAIMED')).toHaveLength(1);
        expect(r.lastEventSeq).toBe(events.length);
      }
      const workersUsed = new Set((await Promise.all(ids.map(run))).map((r) => r.workerId));
      console.info(`200 runs on ${backend}: ${workersUsed.size} workers took part`);
    });
  });

  describe.skipIf(backend !== 'postgres')(`two servers on one ${backend} database`, () => {
    // Both servers re-read the store only every 10 minutes without a wake-up,
    // so what crosses between them here crosses through LISTEN/NOTIFY.
    const slow = { OZ_EVENT_POLL_MS: '600000', OZ_SWEEP_INTERVAL_MS: '600000' };
    let a: OzServerHandle;
    let b: OzServerHandle;
    const markers: string[] = [];
    beforeAll(async () => {
      a = await startOzServer(backend, { ...pg, args: ['--no-worker'], env: slow });
      b = await startOzServer(backend, { ...pg, env: slow, shareDatabaseWith: a });
    });
    afterAll(async () => {
      for (const marker of markers) for (const pid of pidsWith(marker)) process.kill(pid, 'SIGKILL');
      expect(await b?.stop()).toBe(0);
      expect(await a?.stop()).toBe(0);
    });

    it("a run created on one server is executed by the other's worker, and a cancel on the first reaches it and the other's event stream", async () => {
      const marker = `600.${randomBytes(3).readUIntBE(0, 3)}`;
      markers.push(`sleep ${marker}`);
      const created = await api(a, 'POST', '/api/v1/agent/runs', { key: a.adminKey, body: { prompt: `sleep ${marker}`, config: { harness: { type: 'command' } } } });
      const runId = (created.body as { run_id: string }).run_id;
      const get = async (server: OzServerHandle) => ((await api(server, 'GET', `/api/v1/agent/runs/${runId}`, { key: a.adminKey })).body as Json).state;
      await until('the worker on b to start it', async () => (await get(b)) === 'INPROGRESS', 10_000);

      const follow = runOz(['run', 'get', runId, '--follow', '--output-format', 'ndjson', '--server-url', b.url, '--api-key', a.adminKey], b.cliEnv);
      await new Promise((r) => setTimeout(r, 500));
      const cancel = await api(a, 'POST', `/api/v1/agent/runs/${runId}/cancel`, { key: a.adminKey });
      expect(cancel.status).toBe(200);
      await until('CANCELLED', async () => (await get(a)) === 'CANCELLED', 10_000);
      const followed = await follow;
      const last = JSON.parse(followed.stdout.trim().split('\n').at(-1) ?? '{}') as { data?: { to?: string } };
      expect(last.data?.to).toBe('CANCELLED');
      expect(pidsWith(`sleep ${marker}`)).toEqual([]);
    });
  });
}
