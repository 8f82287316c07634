import { fileURLToPath } from 'node:url';
import { createLogger } from './logger.js';
import { systemClock } from '../core/clock.js';
import { loadServerCommand } from '../core/config.js';
import type { ServerCommandOptions } from '../cli/program.js';
import { randomToken } from '../core/ids.js';
import { buildModelCatalog } from '../core/model-catalog-file.js';
import { createApp } from '../server/create-app.js';
import { buildNetworkSettings } from '../server/network-settings.js';
import { EventHub } from '../server/event-hub.js';
import { sweepGraceMs } from '../server/lifecycle-sweeper.js';
import { bootstrapAdmin } from './bootstrap-admin.js';
import { guardProcess } from './process-guard.js';
import { prepareWorker } from './build-worker.js';
import { openStore } from './open-store.js';
import type { Envelope } from '../secrets/envelope.js';
import { openKeyring } from '../secrets/keyring.js';

/** The embedded worker's id starts with this (one per data dir on SQLite: the lock says it is ours). */
// ':' cannot be in a host name, so no other worker's id (host-pid-random) starts with it.
const EMBEDDED_WORKER_PREFIX = 'embedded:';

/**
 * `oz server`: the composition root of the API and (unless --no-worker) the
 * embedded worker. Builds the store, clock, logger and event hub, serves the
 * app, bootstraps the first admin, and on SIGTERM / SIGINT drains the
 * embedded worker, stops accepting, ends streams and closes the store.
 */
export async function runServer(options: ServerCommandOptions): Promise<void> {
  const { config, launch } = loadServerCommand(options.settings);
  // Before anything is opened: a catalog file that does not parse stops the server with its reason.
  const modelCatalog = buildModelCatalog(config);
  const network = buildNetworkSettings(config.network);
  const logger = createLogger(config.logLevel);
  guardProcess(logger);
  // The embedded worker's sandbox backend first: a host that cannot run it
  // stops the server before anything is opened or bound.
  const workerLogger = logger.child({ component: 'worker' });
  const embeddedWorkerSecret = options.worker ? randomToken(32) : undefined;
  const buildEmbedded = embeddedWorkerSecret
    ? await prepareWorker({ token: embeddedWorkerSecret, backend: launch.sandboxBackend, config, logger: workerLogger, idPrefix: EMBEDDED_WORKER_PREFIX })
    : null;
  const store = await openStore(config, logger.child({ component: 'store' }));
  let envelope: Envelope;
  try {
    envelope = await openKeyring(config, store.secrets, systemClock.now());
  } catch (error) {
    await store.close();
    throw error;
  }
  if (!config.databaseUrl) {
    // This process holds the data dir's lock, so the embedded worker of the
    // server that held it before is dead, and its sandboxes with it: its runs
    // are resolved by the first sweep, not a lease TTL from now.
    const now = systemClock.now();
    const expired = await store.expireLeasesHeldBy(EMBEDDED_WORKER_PREFIX, now - sweepGraceMs(config.leaseTtlMs) - 1);
    if (expired > 0) logger.warn({ runs: expired }, 'runs of the previous embedded worker (dead with its server) will be resolved now');
  }
  const hub = new EventHub(store.wakeups);
  await hub.connect();
  const app = await createApp({
    store,
    envelope,
    clock: systemClock,
    hub,
    logger,
    models: { defaultModel: config.defaultModel, models: config.models },
    modelCatalog,
    network,
    teamMaxConcurrentRuns: config.teamMaxConcurrentRuns,
    leaseTtlMs: config.leaseTtlMs,
    followups: config.followups,
    webSessionTtlMs: config.webSessionTtlMs,
    trustProxy: config.trustProxy,
    // The dashboard `npm run build` put beside the compiled server (dist/web).
    webRoot: fileURLToPath(new URL('../web/', import.meta.url)),
    sweepIntervalMs: config.sweepIntervalMs,
    eventPollMs: config.eventPollMs,
    eventStreams: config.eventStreams,
    sandboxLimits: { defaults: config.sandboxDefaults, maxima: config.sandboxMaxima },
    // The embedded worker's setting, read by every `oz server` (with or without a worker): devcontainer.json files come from there.
    githubApiUrl: config.results.githubApiUrl,
    ...(embeddedWorkerSecret ? { embeddedWorkerSecret } : {}),
  });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await store.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  await bootstrapAdmin({ store, clock: systemClock, logger, config, isTty: Boolean(process.stdout.isTTY), print }, url);
  const worker = buildEmbedded ? buildEmbedded(url) : null;
  worker?.start();
  const where = config.databaseUrl ? 'PostgreSQL' : `SQLite in ${config.dataDir}`;
  // The handlers before the line that says the server is up: whoever reads it may signal at once,
  // and a SIGTERM with no handler yet would kill the process instead of draining it.
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void (worker ? worker.drain(config.drainGraceMs) : Promise.resolve())
        .then(() => app.close())
        .then(() => hub.disconnect())
        .then(() => store.close())
        .catch((error: unknown) => logger.error({ err: error }, 'error during shutdown'))
        .finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  print(`Oz server listening on ${url} (${where}${worker ? `, embedded worker x${config.workerConcurrency}` : ', no worker'})`);
  await stopped;
}
