import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { systemClock } from '../../src/core/clock.js';
import { createApp } from '../../src/server/create-app.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import type { ServerDeps } from '../../src/server/deps.js';
import { EventHub } from '../../src/server/event-hub.js';
import { Envelope } from '../../src/secrets/envelope.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { sqliteFactory, type StoreHandle } from './store-factories.js';

export interface InProcessApp {
  app: FastifyInstance;
  /** The app on a loopback port (for clients that speak HTTP: the worker's protocol client). */
  url: string;
  store: SqlStore;
  deps: ServerDeps;
  /** The embedded worker's credential: what a ProtocolClient presents. */
  workerSecret: string;
  close(): Promise<void>;
}

/**
 * The real app (createApp) on a real SQLite store, in this process: the fast
 * tier's server. No doubles of our own layers; only the process boundary is gone.
 */
export async function startInProcessApp(overrides: Partial<ServerDeps> = {}): Promise<InProcessApp> {
  const handle: StoreHandle = await sqliteFactory.open();
  const workerSecret = randomBytes(24).toString('hex');
  const hub = new EventHub(handle.store.wakeups);
  await hub.connect();
  const deps: ServerDeps = {
    store: handle.store,
    clock: systemClock,
    hub,
    logger: pino({ level: 'silent' }),
    models: { defaultModel: null, models: [] },
    teamMaxConcurrentRuns: 10,
    envelope: new Envelope(randomBytes(32)),
    leaseTtlMs: 30_000,
    embeddedWorkerSecret: workerSecret,
    sweepIntervalMs: 60_000,
    ...overrides,
  };
  const app = await createApp(deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    store: handle.store,
    deps,
    workerSecret,
    async close() {
      await app.close();
      hub.disconnect();
      await handle.cleanup();
    },
  };
}

/**
 * The in-process app with the first admin's API key, shaped for the API
 * contract (test/api/api-contract.ts): the fast tier runs the same contract
 * without a process.
 */
export async function startInProcessServer(options: { defaultModel: string }): Promise<{ url: string; adminKey: string; stop(): Promise<void> }> {
  const server = await startInProcessApp({ models: { defaultModel: options.defaultModel, models: [options.defaultModel] } });
  const now = Date.now();
  const team = await server.store.createTeam({ name: 'default', maxConcurrentRuns: 10 }, now);
  const user = await server.store.createUser({ teamId: team.id, email: 'admin@localhost', displayName: 'Admin', role: 'admin' }, now);
  const minted = mintCredential(API_KEY_PREFIX);
  await server.store.createApiKey({ teamId: team.id, userId: user.id, name: 'bootstrap-admin', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
  return { url: server.url, adminKey: minted.secret, stop: () => server.close() };
}
