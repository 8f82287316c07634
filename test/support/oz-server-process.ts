import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { registerProcess } from './process-registry.js';
import { Cgroups } from '../../src/sandbox/bwrap/cgroups.js';
import { mountsUnder, unmount } from '../../src/sandbox/reap.js';
import type { StoreSpec } from './store-factories.js';

/** The real `oz` executable (npm test builds dist/ before the tests run). */
export const OZ_BIN = fileURLToPath(new URL('../../bin/oz.js', import.meta.url));

export type Backend = 'sqlite' | 'postgres';

export interface OzServerHandle {
  backend: Backend;
  url: string;
  /** The admin key the server's first start wrote to the CLI config. */
  adminKey: string;
  /** Environment for CLI processes that talk to this server (its CLI config, no stray OZ_/WARP_ vars). */
  cliEnv: Record<string, string>;
  pid: number;
  /** How a test process opens the same database (for checks from the store, not from logs). */
  storeSpec: StoreSpec;
  /** The server's data directory (its master key file lives there). */
  dataDir: string;
  /** Everything the server wrote to stderr (its log) so far. */
  logs(): string;
  /** Stop with SIGTERM; resolves to the server's exit code. */
  stop(): Promise<number | null>;
}

/** Tracked for the suite's teardown (test/support/process-registry.ts). */
function track<T extends ChildProcess>(child: T): T {
  registerProcess(child.pid);
  return child;
}

/** The process environment without our own variables, so tests never pick up a developer's settings. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Model provider settings too: a test's model is the scripted server it names, never the host's.
    if (v !== undefined && !/^(OZ_|WARP_|ANTHROPIC_|OPENAI_)/.test(k) && k !== 'XDG_CONFIG_HOME' && k !== 'XDG_DATA_HOME') env[k] = v;
  }
  return env;
}

async function waitForListening(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`oz server did not start in 20 s; stderr:\n${stderr()}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`oz server exited with ${code} before listening; stderr:\n${stderr()}`));
    });
  });
}

/**
 * Start `oz server --port 0` as a real process: SQLite in a temp data dir, or
 * PostgreSQL in a fresh schema of the test database (dropped on stop). Its
 * CLI config (with the bootstrap admin key) lives in a temp XDG_CONFIG_HOME.
 */
/** Whether a process (by pid) still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * What a worker killed with SIGKILL leaves on the host (a drained one removes
 * it itself): its sandbox directory, and the cgroups of the runs it held.
 */
export function cleanUpAfterWorker(pid: number): void {
  if (alive(pid)) return;
  // The worker's fence watchdog removes the same things when it sees the
  // worker die: this is the backstop. Per-run disks are unmounted first (a
  // removal must never descend into a mounted file system), and a race with
  // the watchdog is not an error.
  const dir = join(tmpdir(), 'oz-sandboxes', `w${pid}`);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      for (const point of mountsUnder(dir)) unmount(point, 'umount');
      rmSync(dir, { recursive: true, force: true });
      break;
    } catch {
      spawnSync('sleep', ['0.1']);
    }
  }
  Cgroups.detect()?.removeWhere((name) => name.startsWith(`oz-w${pid}-`));
}

export async function startOzServer(
  backend: Backend,
  options: { pgUrl?: string; env?: Record<string, string>; args?: string[]; shareDatabaseWith?: OzServerHandle } = {},
): Promise<OzServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'oz-server-'));
  // Searchable by the sandboxes' uids: the repository cache lives in here.
  chmodSync(dir, 0o711);
  const configHome = join(dir, 'config');
  const env: Record<string, string> = {
    ...cleanEnv(),
    XDG_CONFIG_HOME: configHome,
    OZ_DATA_DIR: join(dir, 'data'),
    OZ_CACHE_DIR: join(dir, 'cache'),
    OZ_LOG_LEVEL: 'warn',
    ...options.env,
  };
  let schema: string | null = null;
  let ownsSchema = false;
  const shared = options.shareDatabaseWith?.storeSpec;
  // Servers of one deployment share its master key (the first one made it).
  if (options.shareDatabaseWith && options.env?.OZ_MASTER_KEY === undefined) env.OZ_MASTER_KEY = readFileSync(join(options.shareDatabaseWith.dataDir, 'master.key'), 'utf8').trim();
  if (backend === 'postgres') {
    if (!options.pgUrl) throw new Error('pgUrl is required for the postgres backend');
    if (shared?.kind === 'postgres') {
      schema = shared.schema;
    } else {
      schema = `oz_srv_${randomBytes(6).toString('hex')}`;
      ownsSchema = true;
      const client = new pg.Client({ connectionString: options.pgUrl });
      await client.connect();
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.end();
    }
    const url = new URL(options.pgUrl);
    url.searchParams.set('options', `-c search_path=${schema}`);
    env.OZ_DATABASE_URL = url.toString();
  }
  const child = track(spawn(process.execPath, [OZ_BIN, 'server', '--port', '0', ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const cleanup = async (): Promise<void> => {
    if (schema && ownsSchema && options.pgUrl) {
      const client = new pg.Client({ connectionString: options.pgUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let url: string;
  try {
    url = await waitForListening(child, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    await cleanup();
    throw error;
  }
  // A server joining an existing database does not bootstrap: it uses the first server's key.
  const adminKey = options.shareDatabaseWith
    ? options.shareDatabaseWith.adminKey
    : (JSON.parse(readFileSync(join(configHome, 'oz', 'config.json'), 'utf8')) as { api_key: string }).api_key;
  return {
    backend,
    url,
    adminKey,
    cliEnv: { ...cleanEnv(), XDG_CONFIG_HOME: configHome },
    pid: child.pid ?? -1,
    dataDir: env.OZ_DATA_DIR ?? join(dir, 'data'),
    logs: () => stderr,
    storeSpec: schema && options.pgUrl ? { kind: 'postgres', url: options.pgUrl, schema } : { kind: 'sqlite', file: join(dir, 'data', 'oz.db') },
    async stop() {
      let code: number | null = child.exitCode;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        code = await exited;
        clearTimeout(timer);
      }
      if (child.pid !== undefined) cleanUpAfterWorker(child.pid);
      await cleanup();
      return code;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real `oz` CLI as a process and collect its output. */
export function runOz(args: string[], env: Record<string, string>, options: { timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OZ_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`oz ${args.join(' ')} timed out; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Small fetch helper for API tests: JSON in, status + parsed body + headers out. */
export async function api(
  server: { url: string },
  method: string,
  path: string,
  options: { key?: string | null; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export interface OzWorkerHandle {
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL if still running (cleanup). */
  kill(): Promise<void>;
}

/** Start `oz worker` as a real process against a server. */
export async function startOzWorker(server: OzServerHandle, token: string, env: Record<string, string> = {}, args: string[] = []): Promise<OzWorkerHandle> {
  const cache = mkdtempSync(join(tmpdir(), 'oz-worker-cache-'));
  chmodSync(cache, 0o711);
  const child = track(
    spawn(process.execPath, [OZ_BIN, 'worker', '--server', server.url, '--token', token, ...args], {
      env: { ...cleanEnv(), OZ_LOG_LEVEL: 'warn', OZ_CACHE_DIR: cache, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      rmSync(cache, { recursive: true, force: true });
      if (child.pid !== undefined) cleanUpAfterWorker(child.pid);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oz worker did not start:\n${out}`)), 20_000);
    child.stdout.on('data', () => {
      if (out.includes('serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`oz worker exited with ${code}:\n${out}`));
    });
  });
  return {
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    signal: (signal) => void child.kill(signal),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
