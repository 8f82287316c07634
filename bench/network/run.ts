/**
 * Network egress: what the worker's egress proxy (src/worker/egress/egress-proxy.ts)
 * adds to a run with network `allowlist`, against a direct connection
 * measured in the same run.
 *
 *   npx tsx bench/network/run.ts          # same as: npm run bench:network
 *
 * Four processes, as in a real run: this one is the client (the tool in the
 * sandbox); a destination (a loopback HTTP server); the worker (the real
 * EgressProxy, once on a loopback port and once on a unix socket in a temp
 * directory, rules `bench.test:<port>`, `internalRanges` 127.0.0.1/32 and a
 * lookup that answers 127.0.0.1, so nothing leaves the machine); and the
 * sandbox's init itself (dist/in-sandbox/sandbox-init.js with `--egress`, its
 * TCP → unix-socket bridge; `npm run build` first). Requests name
 * `bench.test:<port>`, as a sandbox's would name a real host.
 *
 * - Latency: sequential requests for a 1 KiB response, each on a new
 *   connection (`Connection: close`): direct; through the proxy as plain HTTP
 *   (absolute URL); through a new CONNECT tunnel per request; and the
 *   sandbox's path, client → bridge → proxy on its unix socket → destination,
 *   by CONNECT and by plain HTTP. The paths take turns request by request, so
 *   drift on a shared machine hits them alike.
 * - Throughput: one large response (default 1 GiB) streamed direct, through a
 *   CONNECT tunnel, through the bridge and the unix socket, and by plain HTTP
 *   through the proxy; the median of the rounds, in turns as well. A download
 *   whose connection closes before its content-length is in is counted
 *   ("cut short"), not timed, and tried again (up to 5 times a round).
 *
 * Sizes: OZ_BENCH_NET_REQUESTS (2000), OZ_BENCH_NET_WARMUP (200),
 * OZ_BENCH_NET_DOWNLOAD_MIB (1024), OZ_BENCH_NET_DOWNLOADS (3). Percentiles are
 * nearest-rank. Prints tables, then one JSON line. Results are written to
 * docs/benchmarks.md by hand.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, globalAgent, request, type IncomingMessage, type RequestOptions } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { NetworkAudit } from '../../src/core/network-audit.js';
import { parseDomainRule } from '../../src/core/network-policy.js';
import { EgressProxy } from '../../src/worker/egress/egress-proxy.js';
import { guard, intFromEnv, ms, onCleanup, progress, runCleanups, stats, table, type Stats } from '../support.js';

const REQUESTS = intFromEnv('OZ_BENCH_NET_REQUESTS', 2000);
const WARMUP = intFromEnv('OZ_BENCH_NET_WARMUP', 200, 0);
const DOWNLOAD_MIB = intFromEnv('OZ_BENCH_NET_DOWNLOAD_MIB', 1024);
const DOWNLOADS = intFromEnv('OZ_BENCH_NET_DOWNLOADS', 3);
const HOST = 'bench.test';
const SMALL = 1024;
const MIB = 1024 * 1024;
const WATCHDOG_MS = 20 * 60_000;
const CHILD_STOP_MS = 5_000;
/** The sandbox init as the build ships it: the bench runs its egress bridge, not a copy. */
const INIT_SCRIPT = fileURLToPath(new URL('../../dist/in-sandbox/sandbox-init.js', import.meta.url));

// ---------------------------------------------------------------------------
// The other processes (this file again, with a role)

type Role = 'destination' | 'proxy';
type ToParent = { type: 'ready'; port: number } | { type: 'audit'; tcp: unknown; unix: unknown; denied: number };
type ToChild = { type: 'stop' } | { type: 'audit' };

/** A loopback HTTP server: `/small` is 1 KiB, `/bytes/N` streams N bytes (with backpressure). */
function startDestination(): Promise<{ port: number; close: () => Promise<void> }> {
  const small = Buffer.alloc(SMALL, 'x');
  const chunk = Buffer.alloc(256 * 1024, 'y');
  const server = createHttpServer((req, res) => {
    req.resume();
    if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SMALL }).end(small);
      return;
    }
    const big = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (!big) {
      res.writeHead(404).end();
      return;
    }
    let left = Number(big[1]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
    const write = (): void => {
      while (left > 0 && !res.destroyed) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!res.write(piece)) {
          res.once('drain', write);
          return;
        }
      }
      res.end();
    };
    write();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        close: async () => {
          server.closeAllConnections();
          await new Promise<void>((done) => server.close(() => done()));
        },
      }),
    );
  });
}

/** A child's life: start its servers, say `ready` with a port, answer `audit`, close everything on `stop` or when the parent goes. */
async function child(role: Role, args: string[]): Promise<void> {
  const send = (message: ToParent): void => void process.send?.(message);
  let close: () => Promise<void>;
  let port: number;
  let audit: (() => ToParent) | null = null;
  if (role === 'destination') {
    const destination = await startDestination();
    ({ port, close } = destination);
  } else {
    const [destPort, socketPath] = args as [string, string];
    let denied = 0;
    const options = {
      rules: [parseDomainRule(`${HOST}:${destPort}`)],
      internalRanges: ['127.0.0.1/32'],
      lookup: async () => ['127.0.0.1'],
      onDenied: () => void (denied += 1),
    };
    const tcp = await EgressProxy.start(0, options);
    const unix = await EgressProxy.start(socketPath, options);
    port = tcp.port;
    audit = () => ({ type: 'audit', tcp: tcp.audit(), unix: unix.audit(), denied });
    close = async () => {
      await tcp.close();
      await unix.close();
      globalAgent.destroy(); // sockets a proxy's plain-HTTP requests may have pooled in Node's global agent (keep-alive)
    };
  }
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= close().finally(() => {
      if (process.connected) process.disconnect();
    }));
  process.on('message', (message: ToChild) => {
    if (message.type === 'audit' && audit) send(audit());
    if (message.type === 'stop') void stop();
  });
  process.once('disconnect', () => void stop());
  send({ type: 'ready', port });
}

// ---------------------------------------------------------------------------
// The parent: children, the client, the measurements

interface Child {
  process: ChildProcess;
  port: number;
}

async function startChild(role: Role, args: string[]): Promise<Child> {
  const proc = fork(fileURLToPath(import.meta.url), [role, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  onCleanup(`stop the ${role} (pid ${proc.pid})`, () => stopChild(proc));
  const port = await new Promise<number>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`the ${role} exited (${code}) before it was ready`));
    proc.once('error', reject);
    proc.once('exit', onExit);
    proc.on('message', (message: ToParent) => {
      if (message.type !== 'ready') return;
      proc.off('exit', onExit);
      resolve(message.port);
    });
  });
  return { process: proc, port };
}

/** Ask it to close its servers and exit; kill it by its PID if it has not in 5 s. */
async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  if (proc.connected) proc.send({ type: 'stop' } satisfies ToChild);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CHILD_STOP_MS)));
  const killed = await Promise.race([exited.then(() => false), late]);
  clearTimeout(timer);
  if (killed) {
    proc.kill('SIGKILL');
    await exited;
  }
}

/** The built sandbox init itself, bridging a free loopback port to the proxy's socket (`--egress`), as in a run with network allowlist. */
async function startInitBridge(socketPath: string): Promise<{ port: number }> {
  if (!existsSync(INIT_SCRIPT)) throw new Error(`${INIT_SCRIPT} is missing: run npm run build first`);
  const port = await freePort();
  const proc = spawn(process.execPath, [INIT_SCRIPT, '--egress', String(port), socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(`stop the sandbox init (pid ${proc.pid})`, async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.stdin.end(); // the init exits when its requests end
    const late = setTimeout(() => proc.kill('SIGKILL'), CHILD_STOP_MS);
    await exited;
    clearTimeout(late);
  });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`the sandbox init exited (${code}) before it was ready`)));
    proc.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('"ev":"ready"')) resolve();
    });
  });
  return { port };
}

/** A loopback port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function askAudit(proxy: Child): Promise<Extract<ToParent, { type: 'audit' }>> {
  return new Promise((resolve) => {
    const onMessage = (message: ToParent): void => {
      if (message.type !== 'audit') return;
      proxy.process.off('message', onMessage);
      resolve(message);
    };
    proxy.process.on('message', onMessage);
    proxy.process.send({ type: 'audit' } satisfies ToChild);
  });
}

/** Where a request goes: straight to the destination, or to a proxy port (the proxy's own, or the bridge's) as plain HTTP or by CONNECT. */
type Via = { kind: 'direct' } | { kind: 'forward'; proxyPort: number } | { kind: 'tunnel'; proxyPort: number };

interface Path {
  name: string;
  via: Via;
}

/** A response whose connection closed before its `content-length` bytes were in. */
class CutShort extends Error {
  constructor(
    readonly got: number,
    readonly expected: number,
  ) {
    super(`the connection closed after ${got} of ${expected} bytes`);
  }
}

/** Read a response until it ends or its connection closes; the bytes of its body. */
function drain(res: IncomingMessage): Promise<number> {
  return new Promise((resolve) => {
    let bytes = 0;
    res.on('data', (chunk: Buffer) => (bytes += chunk.length));
    res.once('end', () => resolve(bytes));
    // Closed before the end (Node also reports it as an error): the caller sees the bytes are missing.
    res.once('error', () => resolve(bytes));
    res.once('close', () => resolve(bytes));
  });
}

/** One GET on a new connection (`Connection: close`); the body's size, checked against `expect`. */
function get(via: Via, destPort: number, path: string, expect: number): Promise<number> {
  const authority = `${HOST}:${destPort}`;
  const send = (options: RequestOptions): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ ...options, headers: { host: authority, connection: 'close' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${JSON.stringify(via)} ${path}: HTTP ${res.statusCode} ${String(res.headers['x-oz-denied'] ?? '')}`));
          return;
        }
        void drain(res).then((bytes) => (bytes === expect ? resolve(bytes) : reject(new CutShort(bytes, expect))));
      });
      req.once('error', reject);
      req.end();
    });
  if (via.kind === 'direct') return send({ host: '127.0.0.1', port: destPort, path, agent: false });
  if (via.kind === 'forward') return send({ host: '127.0.0.1', port: via.proxyPort, path: `http://${authority}${path}`, agent: false });
  return new Promise((resolve, reject) => {
    const tunnel = request({ host: '127.0.0.1', port: via.proxyPort, method: 'CONNECT', path: authority, agent: false, headers: { host: authority } });
    tunnel.once('error', reject);
    tunnel.once('connect', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`CONNECT ${authority}: HTTP ${res.statusCode}`));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      send({ createConnection: () => socket as Socket, path }).then(resolve, (error: unknown) => {
        socket.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
    tunnel.end();
  });
}

/** The status a CONNECT to `authority` is answered with (to see the policy at work). */
function connectStatus(proxyPort: number, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const tunnel = request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: authority, agent: false, headers: { host: authority } });
    tunnel.once('error', reject);
    tunnel.once('connect', (res: IncomingMessage, socket: Duplex) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    tunnel.once('response', (res: IncomingMessage) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    tunnel.end();
  });
}

/** A request's failure, named by its path. */
const measured = (path: Path, request: Promise<number>): Promise<number> =>
  request.catch((error: unknown) => {
    if (error instanceof CutShort) throw error;
    throw new Error(`${path.name}: ${error instanceof Error ? error.message : String(error)}`);
  });

interface LatencyRow {
  name: string;
  stats: Stats;
}

async function latency(paths: Path[], destPort: number): Promise<LatencyRow[]> {
  const samples = paths.map(() => [] as number[]);
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    if (i === WARMUP) progress(`latency: ${REQUESTS} timed requests per path`);
    for (const [p, path] of paths.entries()) {
      const start = performance.now();
      await measured(path, get(path.via, destPort, '/small', SMALL));
      if (i >= WARMUP) samples[p]?.push(performance.now() - start);
    }
  }
  return paths.map((path, p) => ({ name: path.name, stats: stats(samples[p] ?? []) }));
}

interface ThroughputRow {
  name: string;
  mibPerSecond: number[];
  /** Downloads that ended short (bytes received of each): counted, not timed, and tried again. */
  cutShort: number[];
}

/** Tries per path and round before a round goes without a sample. */
const DOWNLOAD_TRIES = 5;

async function throughput(paths: Path[], destPort: number): Promise<ThroughputRow[]> {
  const bytes = DOWNLOAD_MIB * MIB;
  const rows: ThroughputRow[] = paths.map((path) => ({ name: path.name, mibPerSecond: [], cutShort: [] }));
  for (let round = 0; round < DOWNLOADS; round++) {
    progress(`throughput: round ${round + 1} of ${DOWNLOADS} (${DOWNLOAD_MIB} MiB per path)`);
    for (const [p, path] of paths.entries()) {
      const row = rows[p] as ThroughputRow;
      for (let tries = 0; tries < DOWNLOAD_TRIES; tries++) {
        const start = performance.now();
        try {
          await measured(path, get(path.via, destPort, `/bytes/${bytes}`, bytes));
        } catch (error) {
          if (!(error instanceof CutShort)) throw error;
          row.cutShort.push(error.got);
          progress(`${path.name}: ${error.message}; again`);
          continue;
        }
        row.mibPerSecond.push(DOWNLOAD_MIB / ((performance.now() - start) / 1000));
        break;
      }
    }
  }
  return rows;
}

const median = (xs: number[]): number => stats(xs).p50;
const ratio = (x: number): string => `${x.toFixed(2)}×`;
const rate = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function main(): Promise<number> {
  guard(WATCHDOG_MS);
  const t0 = performance.now();
  const [loadAtStart = NaN] = loadavg();
  let failed = false;
  const out: string[] = [];
  try {
    const dir = mkdtempSync(join(tmpdir(), 'oz-bench-network-'));
    onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'egress.sock');

    const destination = await startChild('destination', []);
    const proxy = await startChild('proxy', [String(destination.port), socketPath]);
    const bridge = await startInitBridge(socketPath);
    const denied = await connectStatus(proxy.port, `other.test:${destination.port}`);
    if (denied !== 403) throw new Error(`CONNECT to a host outside the rules was answered ${denied}, not 403`);

    out.push(
      `Network egress benchmark (bench/network/run.ts) — Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), kernel ${release()}`,
      `  destination 127.0.0.1:${destination.port} as ${HOST}:${destination.port}; proxy on 127.0.0.1:${proxy.port} and ${socketPath}; bridge on 127.0.0.1:${bridge.port}`,
      '',
    );

    const direct: Path = { name: 'direct (baseline)', via: { kind: 'direct' } };
    const small: Path[] = [
      direct,
      { name: 'proxy, plain HTTP (absolute URL)', via: { kind: 'forward', proxyPort: proxy.port } },
      { name: 'proxy, CONNECT tunnel', via: { kind: 'tunnel', proxyPort: proxy.port } },
      { name: 'bridge → unix socket → proxy, CONNECT', via: { kind: 'tunnel', proxyPort: bridge.port } },
      { name: 'bridge → unix socket → proxy, plain HTTP', via: { kind: 'forward', proxyPort: bridge.port } },
    ];
    const lat = await latency(small, destination.port);
    const base = (lat[0] as LatencyRow).stats;
    out.push(
      table(
        `Latency: GET of a 1 KiB response, a new connection each (${REQUESTS} per path after ${WARMUP} warm-up, in turns)`,
        ['path', 'n', 'p50 ms', 'p95 ms', 'max ms', 'added p50 ms', '× direct p50', '× direct p95'],
        lat.map((row) => [
          row.name,
          String(row.stats.n),
          ms(row.stats.p50),
          ms(row.stats.p95),
          ms(row.stats.max),
          row === lat[0] ? '–' : (row.stats.p50 - base.p50).toFixed(3),
          ratio(row.stats.p50 / base.p50),
          ratio(row.stats.p95 / base.p95),
        ]),
        [false, true, true, true, true, true, true, true],
      ),
      '',
    );

    const big: Path[] = [
      direct,
      { name: 'proxy, CONNECT tunnel', via: { kind: 'tunnel', proxyPort: proxy.port } },
      { name: 'bridge → unix socket → proxy, CONNECT', via: { kind: 'tunnel', proxyPort: bridge.port } },
      { name: 'proxy, plain HTTP (absolute URL)', via: { kind: 'forward', proxyPort: proxy.port } },
    ];
    const thr = await throughput(big, destination.port);
    const baseRate = median((thr[0] as ThroughputRow).mibPerSecond);
    out.push(
      table(
        `Throughput: one ${DOWNLOAD_MIB} MiB response (${DOWNLOADS} rounds, in turns; median)`,
        ['path', 'MiB/s (median)', 'min', 'max', '× direct', 's per GiB', 'cut short'],
        thr.map((row) => {
          const s = stats(row.mibPerSecond);
          const tries = row.mibPerSecond.length + row.cutShort.length;
          return [row.name, rate(s.p50), rate(s.min), rate(s.max), ratio(s.p50 / baseRate), (1024 / s.p50).toFixed(2), `${row.cutShort.length} of ${tries}`];
        }),
        [false, true, true, true, true, true, true],
      ),
    );
    for (const row of thr.filter((r) => r.cutShort.length > 0)) {
      const got = row.cutShort.map((b) => `${DOWNLOAD_MIB * MIB - b} bytes missing`).join(', ');
      out.push(`  NOTE: ${row.name}: ${row.cutShort.length} download(s) ended before their content-length (${got}); not timed, tried again`);
    }
    out.push('');

    // Every request went through the proxy it was meant for: its audit counts one connection per tunnel and per forwarded request.
    const audit = await askAudit(proxy);
    const connections = (which: unknown): number => (which as NetworkAudit).hosts.find((h) => h.host === HOST && h.port === destination.port)?.connections ?? 0;
    const rounds = WARMUP + REQUESTS;
    const downloadsVia = (port: number): number =>
      thr.reduce(
        (sum, row, i) =>
          sum + ((big[i] as Path).via.kind !== 'direct' && (big[i]?.via as { proxyPort: number }).proxyPort === port ? row.mibPerSecond.length + row.cutShort.length : 0),
        0,
      );
    const expected = { tcp: 2 * rounds + downloadsVia(proxy.port), unix: 2 * rounds + downloadsVia(bridge.port) };
    const seen = { tcp: connections(audit.tcp), unix: connections(audit.unix) };
    if (seen.tcp !== expected.tcp || seen.unix !== expected.unix || audit.denied !== 1) {
      throw new Error(`proxy audit: ${JSON.stringify(seen)} connections and ${audit.denied} denials, expected ${JSON.stringify(expected)} and 1`);
    }
    out.push(`  proxy audit: ${seen.tcp} connections to ${HOST}:${destination.port} on the port, ${seen.unix} on the unix socket, 1 denial (other.test), as expected`);
    const [loadAtEnd = NaN] = loadavg();
    out.push(`Total time ${((performance.now() - t0) / 1000).toFixed(0)} s. 1-minute load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end.`);
    console.log(`\n${out.join('\n')}`);
    console.log(
      JSON.stringify({
        bench: 'network',
        node: process.version,
        cores: cpus().length,
        requests: REQUESTS,
        warmup: WARMUP,
        download_mib: DOWNLOAD_MIB,
        downloads: DOWNLOADS,
        latency: lat.map((row) => ({
          path: row.name,
          n: row.stats.n,
          p50_ms: row.stats.p50,
          p95_ms: row.stats.p95,
          max_ms: row.stats.max,
          added_p50_ms: row.stats.p50 - base.p50,
          ratio_p50: row.stats.p50 / base.p50,
        })),
        throughput: thr.map((row) => ({
          path: row.name,
          mib_per_s: median(row.mibPerSecond),
          samples: row.mibPerSecond,
          ratio: median(row.mibPerSecond) / baseRate,
          cut_short_bytes: row.cutShort,
        })),
        load: [loadAtStart, loadAtEnd],
      }),
    );
  } catch (error) {
    failed = true;
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await runCleanups();
  }
  return failed ? 1 : 0;
}

const role = process.argv[2];
if (role === 'destination' || role === 'proxy') await child(role, process.argv.slice(3));
else process.exitCode = await main();
