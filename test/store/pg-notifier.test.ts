import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { EventHub } from '../../src/server/event-hub.js';
import { backoffMs, PgNotifier } from '../../src/store/postgres/pg-notifier.js';
import type { WakeupBus } from '../../src/store/store.js';
import { WAKE_EVERY_WAITER } from '../../src/store/wakeups.js';
import { resolveTestPostgres } from '../support/store-factories.js';
import { until } from '../support/until.js';

const url = await resolveTestPostgres();

/**
 * A TCP proxy in front of the shared test PostgreSQL that this test can cut
 * (every connection through it dropped, new ones refused) and restore on the
 * same port — an outage for this test's connections only.
 */
async function startProxy(target: URL): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server = createServer((client) => {
        const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server?.address();
        port = typeof address === 'object' && address ? address.port : port;
        resolve();
      });
    });
  const cut = async (): Promise<void> => {
    const s = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
  };
  await listen();
  const proxied = new URL(target.toString());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return { url: proxied.toString(), cut, restore: listen, close: cut };
}

describe('backoffMs', () => {
  it('doubles from the minimum, is capped, and jitters within the upper half', () => {
    expect(backoffMs(0, 100, 5000, () => 0)).toBe(50);
    expect(backoffMs(0, 100, 5000, () => 1)).toBe(100);
    expect(backoffMs(3, 100, 5000, () => 1)).toBe(800);
    expect(backoffMs(50, 100, 5000, () => 0)).toBe(2500);
    expect(backoffMs(50, 100, 5000, () => 1)).toBe(5000);
  });
});

describe('EventHub and WAKE_EVERY_WAITER', () => {
  it('wakes every waiter, of runs and of claims', async () => {
    let deliver: (key: string) => void = () => {};
    const bus: WakeupBus = {
      subscribe: async (handler) => {
        deliver = handler;
        return () => {};
      },
      notify: () => {},
    };
    const hub = new EventHub(bus);
    await hub.connect();
    const woken: string[] = [];
    const waits = [
      hub.wait('run-1', 600_000).then(() => woken.push('run-1')),
      hub.wait('run-2', 600_000).then(() => woken.push('run-2')),
      hub.waitClaimable(600_000).then(() => woken.push('claimable')),
    ];
    deliver(WAKE_EVERY_WAITER);
    await Promise.all(waits);
    expect(woken.sort()).toEqual(['claimable', 'run-1', 'run-2']);
    expect(hub.watchedRuns).toBe(0);
  });
});

describe.skipIf(url === null)('PgNotifier on PostgreSQL', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('re-LISTENs for as long as the database is away, then wakes every waiter once', async () => {
    const proxy = await startProxy(new URL(url ?? ''));
    cleanups.push(() => proxy.close());
    const pool = new pg.Pool({ connectionString: url ?? '', max: 2 });
    pool.on('error', () => {});
    cleanups.push(() => pool.end());
    const channel = `oz_wakeup_test_${randomBytes(6).toString('hex')}`;
    const notifier = new PgNotifier(proxy.url, pool, channel, undefined, { minBackoffMs: 20, maxBackoffMs: 200, connectTimeoutMs: 2000 });
    cleanups.push(() => notifier.close());
    const keys: string[] = [];
    await notifier.subscribe((key) => keys.push(key));
    notifier.notify('before');
    await until('the first wake-up', () => keys.includes('before'));

    // An outage longer than a single retry: the connection is cut and new ones refused.
    await proxy.cut();
    await new Promise((r) => setTimeout(r, 1500));
    expect(keys).not.toContain(WAKE_EVERY_WAITER);
    await proxy.restore();

    // Sent until one arrives: a NOTIFY while nobody listens is lost.
    await until(
      'a wake-up over a new LISTEN connection',
      () => {
        notifier.notify('after');
        return keys.includes('after');
      },
      20_000,
      100,
    );
    expect(
      keys.filter((k) => k === WAKE_EVERY_WAITER),
      'one catch-up wake-up once LISTENing again',
    ).toHaveLength(1);
  });
});
