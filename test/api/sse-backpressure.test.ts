import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { openFromSpec } from '../support/store-factories.js';
import { until } from '../support/until.js';
import type { CreatedApiKey, UserItem } from '../../src/api/identity.js';
import type { ProblemBody as Problem } from '../../src/api/problem.js';
import type { RunAgentResponse } from '../../src/api/runs.js';
import { openSse, type SseStream } from './sse-client.js';

/**
 * The guards of the run event stream (docs/api.md "Event streams"), against a
 * real `oz server`: clients that never read cost the server a bounded amount
 * of memory and are disconnected; open streams are capped per key and team;
 * a stream ends when its key stops authenticating, and when it idles on a run
 * no worker holds — but not while a worker holds the run.
 */

const MIB = 1024 * 1024;

/** A field of /proc/<pid>/status in bytes (VmRSS: resident now; VmHWM: the peak so far). */
function procMemory(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * The baseline for a peak measured from now: the peak (VmHWM) is reset to the
 * resident size (`5` into clear_refs; root, Linux ≥ 4.0) so a peak from before,
 * such as the warm-up reader's, does not count as growth. Where it cannot be
 * reset, the old peak is the baseline (growth then counts only above it).
 */
function resetPeak(pid: number): number {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return procMemory(pid, 'VmRSS');
  } catch {
    return procMemory(pid, 'VmHWM');
  }
}

/**
 * How many of these client connections the server process still holds: its
 * socket descriptors whose TCP peer is one of `clientPorts`. A socket the
 * server destroyed has no descriptor any more, even while the kernel still
 * tries to deliver its last bytes.
 */
function serverHeldConnections(pid: number, clientPorts: ReadonlySet<number>): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  let held = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const remote = cols[2];
      const inode = cols[9];
      if (!remote || !inode || !inodes.has(inode)) continue;
      if (clientPorts.has(parseInt(remote.split(':')[1] ?? '', 16))) held++;
    }
  }
  return held;
}

/**
 * A raw HTTP/1.1 client that asks for a run's event stream, waits for the
 * response head, and then stops reading: its socket is paused, so once
 * Node's and the kernel's buffers are full the server cannot write to it.
 */
interface StalledClient {
  socket: Socket;
  localPort: number;
  head: string;
  /** Start reading again and collect everything up to the server's close. */
  drainToEnd(timeoutMs: number): Promise<string>;
}

async function openStalled(server: OzServerHandle, path: string, key: string): Promise<StalledClient> {
  const url = new URL(server.url);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  const chunks: Buffer[] = [];
  const head = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no response head in 10 s')), 10_000);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end !== -1) {
        clearTimeout(timer);
        socket.pause();
        resolve(text.slice(0, end));
      }
    });
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${key}\r\nAccept: text/event-stream\r\n\r\n`);
    });
  });
  socket.removeAllListeners('data');
  return {
    socket,
    localPort: socket.localPort ?? -1,
    head,
    drainToEnd: (timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the server did not close the stream in ${timeoutMs} ms`)), timeoutMs);
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks).toString('utf8'));
        });
        socket.resume();
      }),
  };
}

/** A refused stream request: its status and problem body (a 200 here is a failure). */
async function refusedStream(server: OzServerHandle, runId: string, key: string): Promise<{ status: number; contentType: string; problem: Problem }> {
  const res = await fetch(`${server.url}/api/v1/agent/runs/${runId}/events`, {
    headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status === 200) {
    await res.body?.cancel();
    throw new Error('the stream was opened, not refused');
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', problem: (await res.json()) as Problem };
}

/** A team with one member and `keys` API keys of that member, through the admin API. */
async function newTeam(server: OzServerHandle, name: string, keys = 1): Promise<{ keys: { uid: string; key: string }[] }> {
  const admin = server.adminKey;
  expect((await api(server, 'POST', '/api/v1/admin/teams', { key: admin, body: { name, max_concurrent_runs: 50 } })).status).toBe(201);
  const user = await api(server, 'POST', '/api/v1/admin/users', { key: admin, body: { email: `${name}@example.test`, team: name } });
  expect(user.status, JSON.stringify(user.body)).toBe(201);
  const userId = (user.body as UserItem).uid;
  const out: { uid: string; key: string }[] = [];
  for (let i = 0; i < keys; i++) {
    const res = await api(server, 'POST', `/api/v1/admin/users/${userId}/api-keys`, { key: admin, body: { name: `k${i}` } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    out.push(res.body as CreatedApiKey);
  }
  return { keys: out };
}

async function createRun(server: OzServerHandle, key: string, prompt: string): Promise<string> {
  const res = await api(server, 'POST', '/api/v1/agent/runs', { key, body: { prompt } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body as RunAgentResponse).run_id;
}

/** Append `count` output events of `textBytes` characters each straight into the server's store. */
async function appendOutput(server: OzServerHandle, runId: string, count: number, textBytes: number): Promise<number> {
  const store = await openFromSpec(server.storeSpec);
  try {
    const text = `${'x'.repeat(textBytes - 1)}\n`;
    let last = 0;
    for (let done = 0; done < count; done += 200) {
      const batch = Array.from({ length: Math.min(200, count - done) }, () => ({ type: 'output' as const, at: Date.now(), data: { stream: 'stdout', phase: 'harness', text } }));
      const appended = await store.appendRunEvents(runId, batch);
      last = appended[appended.length - 1]?.seq ?? last;
    }
    return last;
  } finally {
    await store.close();
  }
}

const eventsPath = (runId: string): string => `/api/v1/agent/runs/${runId}/events`;

describe('event streams whose clients do not read', () => {
  // Big enough that the kernel's socket buffers cannot hold a whole stream.
  const EVENTS = 2000;
  const EVENT_BYTES = 8 * 1024;
  const STREAM_BYTES = EVENTS * EVENT_BYTES;
  const CLIENTS = 30;
  let server: OzServerHandle;
  const stalled: StalledClient[] = [];

  beforeAll(async () => {
    server = await startOzServer('sqlite', {
      args: ['--no-worker'],
      env: { OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS: '3000', OZ_EVENT_STREAMS_PER_KEY: '1000', OZ_EVENT_STREAMS_PER_TEAM: '1000' },
    });
  });
  afterEach(() => {
    for (const client of stalled.splice(0)) client.socket.destroy();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('keep the server memory bounded far below one copy of the run per client, answer /healthz, and are disconnected', async () => {
    const key = server.adminKey;
    const runId = await createRun(server, key, 'a run with a lot of output');
    const lastSeq = await appendOutput(server, runId, EVENTS, EVENT_BYTES);

    // A reader that keeps up gets every event (and warms the server up before the baseline).
    const reader = await openSse(`${server.url}${eventsPath(runId)}`, { authorization: `Bearer ${key}` });
    await reader.waitFor(`event ${lastSeq}`, (frames) => frames.some((f) => f.id === String(lastSeq)), 60_000);
    reader.abort();
    const baseline = resetPeak(server.pid);

    for (let i = 0; i < CLIENTS; i++) {
      const client = await openStalled(server, eventsPath(runId), key);
      stalled.push(client);
      expect(client.head).toMatch(/^HTTP\/1\.1 200/);
    }
    const health = await api(server, 'GET', '/healthz');
    expect(health.status).toBe(200);

    // Without backpressure every stalled stream holds its whole run in the server's memory
    // (CLIENTS × STREAM_BYTES); with it, each holds about a socket buffer and a few events.
    // The bound is a third of that: on a loaded two-core machine (the browser tests beside it)
    // the peak reaches a quarter, the collector lagging the writes; a server without
    // backpressure would still be three times over it.
    const bound = (CLIENTS * STREAM_BYTES) / 3;
    const ports = new Set(stalled.map((c) => c.localPort));
    await until(
      'the server to disconnect every client that stopped reading',
      () => {
        const growth = procMemory(server.pid, 'VmHWM') - baseline;
        if (growth > bound) {
          throw new Error(
            `server RSS peaked ${Math.round(growth / MIB)} MiB above its baseline with ${CLIENTS} stalled streams of ${STREAM_BYTES / MIB} MiB (bound ${bound / MIB} MiB)`,
          );
        }
        return serverHeldConnections(server.pid, ports) === 0;
      },
      90_000,
      100,
    );
    const growth = procMemory(server.pid, 'VmHWM') - baseline;
    expect(growth, `peak RSS growth ${Math.round(growth / MIB)} MiB`).toBeLessThan(bound);
    expect((await api(server, 'GET', '/healthz')).status).toBe(200);

    // A client cut off for not reading got a prefix of the stream and no `end`.
    const received = await stalled[0]!.drainToEnd(30_000);
    expect(received).not.toContain('event: end');
    expect(received.length).toBeLessThan(STREAM_BYTES);
    expect(received).toContain('id: 1\n');
  });
});

describe('event stream limits', () => {
  let server: OzServerHandle;
  const streams: SseStream[] = [];

  beforeAll(async () => {
    server = await startOzServer('sqlite', {
      args: ['--no-worker'],
      env: {
        OZ_EVENT_STREAMS_PER_KEY: '2',
        OZ_EVENT_STREAMS_PER_TEAM: '3',
        OZ_EVENT_STREAM_HEARTBEAT_MS: '200',
        OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS: '1500',
      },
    });
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.abort();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const sse = async (runId: string, key: string): Promise<SseStream> => {
    const stream = await openSse(`${server.url}${eventsPath(runId)}`, { authorization: `Bearer ${key}` });
    streams.push(stream);
    expect(stream.status).toBe(200);
    return stream;
  };

  it('refuses a stream over the per-key and the per-team cap with a 429 naming the limit, and frees the slot when a stream closes', async () => {
    const { keys } = await newTeam(server, 'capped', 2);
    const [k1, k2] = [keys[0]!.key, keys[1]!.key];
    const runId = await createRun(server, k1, 'followed by many');
    const first = await sse(runId, k1);
    await sse(runId, k1);

    const perKey = await refusedStream(server, runId, k1);
    expect(perKey.status).toBe(429);
    expect(perKey.contentType).toMatch(/^application\/problem\+json/);
    expect(perKey.problem).toMatchObject({ status: 429, error_code: 'budget_exceeded', retryable: true, reason: 'max_event_streams_per_key' });
    expect(perKey.problem.detail).toContain('max_event_streams_per_key');
    expect(perKey.problem.detail).toContain('OZ_EVENT_STREAMS_PER_KEY');
    expect(perKey.problem.detail).toContain('the most allowed is 2');

    // The team's third stream, through its other key, is within both caps; a fourth is not.
    await sse(runId, k2);
    const perTeam = await refusedStream(server, runId, k2);
    expect(perTeam.status).toBe(429);
    expect(perTeam.problem).toMatchObject({ error_code: 'budget_exceeded', reason: 'max_event_streams_per_team' });
    expect(perTeam.problem.detail).toContain('OZ_EVENT_STREAMS_PER_TEAM');
    expect(perTeam.problem.detail).toContain('the most allowed is 3');

    // Another team is not affected by this one's streams.
    const other = await newTeam(server, 'uncapped');
    const otherRun = await createRun(server, other.keys[0]!.key, 'another team');
    await sse(otherRun, other.keys[0]!.key);

    // Closing a stream gives its slot back.
    first.abort();
    const again = await until(
      'a slot of the key to free up',
      async () => {
        const stream = await openSse(`${server.url}${eventsPath(runId)}`, { authorization: `Bearer ${k1}` });
        if (stream.status === 200) return stream;
        stream.abort();
        return null;
      },
      10_000,
      50,
    );
    streams.push(again);
    await again.waitFor('the run events', (frames) => frames.length >= 1);
  });

  it('ends an open stream once its API key is expired, and the reconnect is refused with a 401', async () => {
    const { keys } = await newTeam(server, 'expiring');
    const { uid, key } = keys[0]!;
    const runId = await createRun(server, key, 'followed with a key that expires');
    const stream = await sse(runId, key);
    await stream.waitFor('the run events', (frames) => frames.length >= 1);
    const expired = await api(server, 'POST', `/api/v1/api-keys/${uid}/expire`, { key });
    expect(expired.status, JSON.stringify(expired.body)).toBe(200);

    await stream.closed(15_000);
    expect(stream.frames.some((f) => f.event === 'end')).toBe(false);
    const again = await refusedStream(server, runId, key);
    expect(again.status).toBe(401);
    expect(again.problem.error_code).toBe('authentication_required');
  });

  it('disconnects a client that stops reading once it stays unwritable for the timeout, without its stream ending normally', async () => {
    const key = server.adminKey;
    const runId = await createRun(server, key, 'followed by a client that stops reading');
    await appendOutput(server, runId, 2000, 8 * 1024);
    const client = await openStalled(server, eventsPath(runId), key);
    expect(client.head).toMatch(/^HTTP\/1\.1 200/);
    const ports = new Set([client.localPort]);
    await until('the server to drop the stalled client', () => serverHeldConnections(server.pid, ports) === 0, 30_000, 100);

    const received = await client.drainToEnd(30_000);
    expect(received).toContain('id: 1\n');
    expect(received).not.toContain('event: end');
    expect(received.length).toBeLessThan(2000 * 8 * 1024);
    expect(server.logs()).toContain('unwritable timeout');
  });
});

describe('idle event streams', () => {
  let server: OzServerHandle;
  const streams: SseStream[] = [];

  beforeAll(async () => {
    server = await startOzServer('sqlite', {
      args: ['--no-worker'],
      env: { OZ_EVENT_STREAM_IDLE_TIMEOUT_MS: '1500', OZ_EVENT_STREAM_HEARTBEAT_MS: '200' },
    });
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.abort();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('ends a stream that sent nothing for the idle timeout on a run no worker holds, but not one on a run a worker holds', async () => {
    const key = server.adminKey;
    // The first run of this server: the claim below can only take it.
    const leasedRun = await createRun(server, key, 'held by a worker');
    const store = await openFromSpec(server.storeSpec);
    try {
      const claimed = await store.claimRuns({ workerId: 'test-worker', limit: 1, leaseTtlMs: 600_000, at: Date.now() });
      expect(claimed.map((r) => r.id)).toEqual([leasedRun]);
    } finally {
      await store.close();
    }
    const waitingRun = await createRun(server, key, 'waiting for a worker');

    const live = await openSse(`${server.url}${eventsPath(leasedRun)}`, { authorization: `Bearer ${key}` });
    streams.push(live);
    const idle = await openSse(`${server.url}${eventsPath(waitingRun)}`, { authorization: `Bearer ${key}` });
    streams.push(idle);
    await live.waitFor('the claim', (frames) => frames.some((f) => f.data.includes('"CLAIMED"')));
    await idle.waitFor('the run events', (frames) => frames.length >= 2);

    await idle.closed(30_000);
    expect(idle.frames.some((f) => f.event === 'end')).toBe(false);
    // A reconnect resumes, and idles out again: by then the live stream, opened
    // before the first idle one and just as quiet, was quiet for two idle timeouts.
    const resumed = await openSse(`${server.url}${eventsPath(waitingRun)}`, { authorization: `Bearer ${key}`, 'last-event-id': '2' });
    streams.push(resumed);
    expect(resumed.status).toBe(200);
    await resumed.closed(30_000);
    expect(resumed.frames).toEqual([]);
    // Its run is being executed, so it is not idle.
    expect(live.ended).toBe(false);
  });
});
