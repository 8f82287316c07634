import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { findPostgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { until } from '../support/until.js';

/**
 * Issue 16 item 12: a PostgreSQL restart must not kill the servers. Two real
 * `oz server` processes (one with the embedded worker, one --no-worker) on a
 * PRIVATE cluster (the shared test server is never restarted); the cluster is
 * stopped with `pg_ctl stop -m fast` (every connection gets 57P01, as in a
 * restart), kept down for a few seconds, and started again.
 */
const binDir = findPostgresBinDir();
const ci = Boolean(process.env.CI);
if (!binDir && !ci) console.warn('PostgreSQL binaries (initdb, pg_ctl) not found: skipping the database restart test');

type Json = Record<string, unknown>;

describe.skipIf(!binDir && !ci)('a PostgreSQL restart', () => {
  let cluster: PrivatePostgres | null = null;
  let down = false;
  let a: OzServerHandle | null = null;
  let b: OzServerHandle | null = null;
  // Event streams and long-polls re-read the store only when woken (10 min
  // fallback poll): what reaches server A from B's writes came over NOTIFY.
  const env = { OZ_EVENT_POLL_MS: '600000', OZ_LEASE_TTL_MS: '30000', OZ_SWEEP_INTERVAL_MS: '200', OZ_TEAM_MAX_CONCURRENT_RUNS: '1' };

  beforeAll(async () => {
    if (!binDir) throw new Error('CI is set but the PostgreSQL binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are missing');
    cluster = await startPrivatePostgres(binDir);
    a = await startOzServer('postgres', { pgUrl: cluster.url, env });
    b = await startOzServer('postgres', { pgUrl: cluster.url, env, args: ['--no-worker'], shareDatabaseWith: a });
  }, 180_000);

  afterAll(async () => {
    if (cluster && down) await cluster.start().catch(() => {});
    const codes = [await b?.stop(), await a?.stop()];
    await cluster?.destroy();
    // Both servers were still running and shut down cleanly.
    if (a && b) expect(codes).toEqual([0, 0]);
  }, 120_000);

  const sql = async <T extends pg.QueryResultRow>(text: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: cluster?.url });
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  };
  /** Backend PIDs of the servers' LISTEN connections. */
  const listeners = async (): Promise<number[]> =>
    (await sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN "oz_wakeup%' AND pid <> pg_backend_pid()`)).map((r) => r.pid);

  it('servers stay up, answer 503 meanwhile, and resume: runs finish and NOTIFY wake-ups work again', async () => {
    const [srvA, srvB, pgc] = [a as OzServerHandle, b as OzServerHandle, cluster as PrivatePostgres];
    const key = srvA.adminKey;
    const get = async (server: OzServerHandle, id: string): Promise<Json> => (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key })).body as Json;
    const create = async (server: OzServerHandle, prompt: string): Promise<string> => {
      const res = await api(server, 'POST', '/api/v1/agent/runs', { key, body: { prompt, config: { harness: { type: 'command' } } } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return (res.body as { run_id: string }).run_id;
    };

    // A run in progress across the outage.
    const survivor = await create(srvA, 'sleep 8; echo survived');
    const started = await until('the run to start', async () => {
      const run = await get(srvA, survivor);
      return ['QUEUED', 'PENDING', 'CLAIMED'].includes(String(run.state)) ? null : run;
    });
    expect(started.state, JSON.stringify(started)).toBe('INPROGRESS');
    const before = await until('both LISTEN connections', async () => {
      const pids = await listeners();
      return pids.length === 2 ? pids : null;
    });

    await pgc.stop('fast');
    down = true;
    for (const server of [srvA, srvB]) {
      const res = await api(server, 'GET', `/api/v1/agent/runs/${survivor}`, { key }).catch((error: unknown) => ({ status: String(error), body: null, headers: new Headers() }));
      expect.soft(res.status, JSON.stringify(res.body)).toBe(503);
      expect.soft(res.headers.get('content-type')).toContain('application/problem+json');
      expect.soft(res.body).toMatchObject({ status: 503, error_code: 'resource_unavailable', retryable: true, reason: 'database_unavailable' });
      const health = await api(server, 'GET', '/healthz').catch((error: unknown) => ({ status: String(error), body: null }));
      expect.soft(health.status).toBe(503);
      expect.soft(health.body).toMatchObject({ status: 'degraded', database: 'unreachable' });
    }
    // Down for a few seconds, as a restart; the sweepers keep failing meanwhile.
    await new Promise((r) => setTimeout(r, 3000));
    expect(alive(srvA.pid), `server A exited:\n${srvA.logs()}`).toBe(true);
    expect(alive(srvB.pid), `server B exited:\n${srvB.logs()}`).toBe(true);
    await pgc.start();
    down = false;
    // Lost connections are expected errors, handled where they happen: none reached
    // the process's last-resort handlers (without those, the process would have exited).
    for (const server of [srvA, srvB]) expect.soft(server.logs()).not.toMatch(/uncaught exception|unhandled promise rejection|Unhandled 'error' event/i);

    for (const server of [srvA, srvB]) {
      await until('the server to be healthy again', async () => (await api(server, 'GET', '/healthz')).status === 200, 60_000, 200);
      expect((await api(server, 'GET', '/healthz')).body).toMatchObject({ status: 'ok' });
    }
    const finished = await until(
      'the run from before the restart to finish',
      async () => {
        const run = await get(srvA, survivor);
        return typeof run.state === 'string' && !['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS'].includes(run.state) ? run : null;
      },
      90_000,
      200,
    );
    expect(finished.state, JSON.stringify(finished)).toBe('SUCCEEDED');

    // The LISTEN connections are back (new backends)...
    const after = await until(
      'both LISTEN connections again',
      async () => {
        const pids = await listeners();
        return pids.length === 2 ? pids : null;
      },
      60_000,
      200,
    );
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);

    // ...and carry wake-ups: B cancels a queued run that A is streaming.
    const blocker = await create(srvA, 'sleep 600');
    const queued = await create(srvB, 'echo never');
    expect((await get(srvB, queued)).state).toBe('QUEUED');
    const abort = new AbortController();
    const response = await fetch(`${srvA.url}/api/v1/agent/runs/${queued}/events`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const reading = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          text += decoder.decode(value, { stream: true });
        }
      } catch {
        // Aborted.
      }
    })();
    try {
      // The stream has sent what is stored and sleeps on the hub.
      await until('the queued state event', () => text.includes('"to":"QUEUED"'));
      const cancel = await api(srvB, 'POST', `/api/v1/agent/runs/${queued}/cancel`, { key });
      expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
      await until('the stream on A to see the cancel made on B', () => text.includes('event: end'), 30_000);
      expect(text).toContain('"to":"CANCELLED"');
    } finally {
      abort.abort();
      await reading;
    }
    expect((await api(srvA, 'POST', `/api/v1/agent/runs/${blocker}/cancel`, { key })).status).toBe(200);
    await until('the blocker to be cancelled', async () => (await get(srvA, blocker)).state === 'CANCELLED');
    expect(alive(srvA.pid) && alive(srvB.pid)).toBe(true);
    for (const server of [srvA, srvB]) expect(server.logs()).not.toMatch(/uncaught exception|unhandled promise rejection|Unhandled 'error' event/i);
  }, 300_000);
});
