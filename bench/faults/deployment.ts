/**
 * A scaled deployment on a PRIVATE PostgreSQL cluster (the shared test
 * server is never restarted): N `oz server --no-worker` processes on fixed
 * loopback ports (a restarted server comes back where its workers look for
 * it) and M `oz worker` processes (bwrap backend), each pointed at one server,
 * all real processes through bin/oz.js from dist/.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { freePort } from '../../test/support/free-port.js';
import { join } from 'node:path';
import { cleanEnv } from '../../test/support/oz-server-process.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../test/support/private-postgres.js';
import { OzProcess, waitFor } from './processes.js';

export interface DeploymentOptions {
  /** The harness's own directory (0711): data dirs, caches, the sandbox root, logs. */
  root: string;
  pgBinDir: string;
  servers: number;
  workers: number;
  workerConcurrency: number;
  leaseTtlMs: number;
  teamMaxConcurrentRuns: number;
  /** `OZ_FILE_REPO_ROOTS`: where the workload's repositories live. */
  fileRepoRoot: string;
}

export interface ServerSlot {
  process: OzProcess;
  port: number;
  url: string;
}

export interface WorkerSlot {
  process: OzProcess;
  /** The server it talks to (index into `servers`). */
  server: number;
  /** The worker id of each start (`host-pid-random`, as in `runs.worker_id`), by PID. */
  ids: Map<number, string>;
}

const START_TIMEOUT_MS = 30_000;
/** Per process group (workers, then servers): both fit in one 15 s cleanup slot of bench/support.ts. */
const STOP_GRACE_MS = 5000;

function ownDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o711 });
  chmodSync(path, 0o711);
  return path;
}

/** GET /healthz: the status code, or null when nothing answers within a second. */
export async function healthz(url: string): Promise<number | null> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return null;
  }
}

export class Deployment {
  readonly servers: ServerSlot[] = [];
  readonly workers: WorkerSlot[] = [];
  adminKey = '';
  private masterKey: string | null = null;
  private readonly workerTokens: string[] = [];

  private constructor(
    readonly options: DeploymentOptions,
    readonly pg: PrivatePostgres,
  ) {}

  /** The database every server uses (the private cluster's `postgres` database, schema `public`). */
  get databaseUrl(): string {
    return this.pg.url;
  }

  get sandboxRoot(): string {
    return join(this.options.root, 'sandboxes');
  }

  get logDir(): string {
    return join(this.options.root, 'logs');
  }

  /** Every PID any slot has had (servers, workers), for the leftover check. */
  get allPids(): number[] {
    return [...this.servers.map((s) => s.process), ...this.workers.map((w) => w.process)].flatMap((p) => p.pids);
  }

  /** Start PostgreSQL (`onPg` is told at once, so a failure later still stops it), the servers, then the workers. */
  static async start(options: DeploymentOptions, onPg: (pg: PrivatePostgres) => void, onDeployment: (d: Deployment) => void): Promise<Deployment> {
    const pg = await startPrivatePostgres(options.pgBinDir);
    onPg(pg);
    const deployment = new Deployment(options, pg);
    onDeployment(deployment);
    ownDir(deployment.logDir);
    ownDir(deployment.sandboxRoot);
    for (let i = 0; i < options.servers; i++) {
      const port = await freePort();
      const name = `server-${String.fromCharCode(97 + i)}`;
      const slot: ServerSlot = {
        port,
        url: `http://127.0.0.1:${port}`,
        process: new OzProcess(
          name,
          () => ['server', '--no-worker', '--port', String(port)],
          () => deployment.serverEnv(name),
          deployment.logDir,
        ),
      };
      deployment.servers.push(slot);
      await deployment.startServer(i);
      if (i === 0) {
        const dir = join(options.root, name);
        deployment.adminKey = (JSON.parse(readFileSync(join(dir, 'config', 'oz', 'config.json'), 'utf8')) as { api_key: string }).api_key;
        deployment.masterKey = readFileSync(join(dir, 'data', 'master.key'), 'utf8').trim();
      }
    }
    for (let i = 0; i < options.workers; i++) {
      deployment.workerTokens.push(await deployment.createWorkerToken(`faults-worker-${i}`));
      const server = i % options.servers;
      const name = `worker-${i}`;
      const url = (deployment.servers[server] as ServerSlot).url;
      const slot: WorkerSlot = {
        server,
        ids: new Map(),
        process: new OzProcess(
          name,
          () => ['worker', '--server', url, '--backend', 'bwrap', '--concurrency', String(options.workerConcurrency)],
          () => deployment.workerEnv(i),
          deployment.logDir,
        ),
      };
      deployment.workers.push(slot);
      await deployment.startWorker(i);
    }
    return deployment;
  }

  private serverEnv(name: string): Record<string, string> {
    const dir = ownDir(join(this.options.root, name));
    return {
      ...cleanEnv(),
      XDG_CONFIG_HOME: join(dir, 'config'),
      OZ_DATA_DIR: join(dir, 'data'),
      OZ_CACHE_DIR: join(dir, 'cache'),
      OZ_DATABASE_URL: this.databaseUrl,
      OZ_LEASE_TTL_MS: String(this.options.leaseTtlMs),
      OZ_SWEEP_INTERVAL_MS: '500',
      OZ_TEAM_MAX_CONCURRENT_RUNS: String(this.options.teamMaxConcurrentRuns),
      OZ_FILE_REPO_ROOTS: this.options.fileRepoRoot,
      OZ_LOG_LEVEL: 'warn',
      ...(this.masterKey ? { OZ_MASTER_KEY: this.masterKey } : {}),
    };
  }

  private workerEnv(i: number): Record<string, string> {
    const dir = ownDir(join(this.options.root, `worker-${i}`));
    return {
      ...cleanEnv(),
      OZ_WORKER_TOKEN: this.workerTokens[i] as string,
      OZ_CACHE_DIR: ownDir(join(dir, 'cache')),
      OZ_SANDBOX_ROOT: this.sandboxRoot,
      OZ_LEASE_TTL_MS: String(this.options.leaseTtlMs),
      OZ_FILE_REPO_ROOTS: this.options.fileRepoRoot,
      OZ_GIT_AUTHOR_NAME: 'Oz Faults',
      OZ_GIT_AUTHOR_EMAIL: 'oz-faults@example.test',
      OZ_KILL_GRACE_MS: '1000',
      OZ_DRAIN_GRACE_MS: '3000',
      OZ_CLAUDE_BIN: 'off',
      OZ_CODEX_BIN: 'off',
      OZ_LOG_LEVEL: 'info',
    };
  }

  private async createWorkerToken(name: string): Promise<string> {
    const response = await fetch(`${(this.servers[0] as ServerSlot).url}/api/v1/worker-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    const text = await response.text();
    if (response.status !== 201 && response.status !== 200) throw new Error(`POST /api/v1/worker-tokens: HTTP ${response.status} ${text}`);
    return (JSON.parse(text) as { token: string }).token;
  }

  /** Start (or restart) server `i` and wait until its /healthz answers 200. */
  async startServer(i: number): Promise<void> {
    const slot = this.servers[i] as ServerSlot;
    slot.process.start();
    await waitFor('/healthz 200', slot.process, async () => ((await healthz(slot.url)) === 200 ? true : null), START_TIMEOUT_MS);
  }

  /** Start (or restart) worker `i` and wait until it says it is serving. */
  async startWorker(i: number): Promise<void> {
    const slot = this.workers[i] as WorkerSlot;
    slot.process.start();
    const id = await waitFor('"serving"', slot.process, () => /Oz worker (\S+) serving/.exec(slot.process.log())?.[1] ?? null, START_TIMEOUT_MS);
    slot.ids.set(slot.process.pid ?? -1, id);
  }

  /** Workers drain (SIGTERM), then servers stop, then PostgreSQL is removed. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.process.stop(STOP_GRACE_MS)));
    await Promise.all(this.servers.map((s) => s.process.stop(STOP_GRACE_MS)));
  }
}
