/**
 * The init of a bwrap sandbox: the first process the jail runs, as the sandbox
 * user. It takes exec/write/signal requests on stdin and answers on stdout
 * (src/sandbox/init/init-protocol.ts), so one sandbox serves every setup
 * command and tool call of a run and services started by setup live on.
 *
 * This file is copied into the sandbox on its own and run by the host's node:
 * it must import nothing but Node's built-ins.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { InitReply, InitRequest } from '../sandbox/init/init-protocol.js';

const children = new Set<ChildProcess>();
const EXIT_DRAIN_MS = 250;
let paused = false;

function send(reply: InitReply): void {
  if (!process.stdout.write(`${JSON.stringify(reply)}\n`) && !paused) {
    // The worker reads slower than the processes print: stop reading them
    // until the pipe drains, so a flood of output cannot grow this process.
    paused = true;
    for (const child of children) {
      child.stdout?.pause();
      child.stderr?.pause();
    }
    process.stdout.once('drain', () => {
      paused = false;
      for (const child of children) {
        child.stdout?.resume();
        child.stderr?.resume();
      }
    });
  }
}

function exec(request: Extract<InitRequest, { op: 'exec' }>): void {
  const [command, ...args] = request.argv;
  if (!command) {
    send({ ev: 'error', id: request.id, message: 'empty argv' });
    return;
  }
  let child: ChildProcess;
  try {
    // Its own process group, so a timeout reaches what it started.
    child = spawn(command, args, { cwd: request.cwd, env: request.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    send({ ev: 'error', id: request.id, message: (error as Error).message });
    return;
  }
  children.add(child);
  let timedOut = false;
  const timer =
    request.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          if (child.pid !== undefined) {
            try {
              process.kill(-child.pid, 'SIGKILL');
            } catch {
              // Already gone.
            }
          }
        }, request.timeoutMs)
      : null;
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.on('data', (chunk: Buffer) => send({ ev: 'out', id: request.id, stream, data: chunk.toString('base64') }));
    if (paused) child[stream]?.pause();
  }
  child.stdin?.on('error', () => {});
  child.stdin?.end(Buffer.from(request.stdin, 'base64'));
  let done = false;
  const finish = (reply: InitReply): void => {
    if (done) return;
    done = true;
    children.delete(child);
    if (timer) clearTimeout(timer);
    send(reply);
  };
  child.on('error', (error) => finish({ ev: 'error', id: request.id, message: error.message }));
  child.on('close', (code, signal) => finish({ ev: 'exit', id: request.id, code, signal, timedOut }));
  child.on('exit', (code, signal) => {
    // A process it left running in the background (a service started by a
    // setup command) may hold its output open for good: the exec is over when
    // the process is, once what it printed has been read.
    setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      finish({ ev: 'exit', id: request.id, code, signal, timedOut });
    }, EXIT_DRAIN_MS);
  });
}

function write(request: Extract<InitRequest, { op: 'write' }>): void {
  try {
    mkdirSync(dirname(request.path), { recursive: true });
    writeFileSync(request.path, Buffer.from(request.data, 'base64'), { mode: request.mode });
    send({ ev: 'written', id: request.id });
  } catch (error) {
    send({ ev: 'error', id: request.id, message: (error as Error).message });
  }
}

function handle(line: string): void {
  const request = JSON.parse(line) as InitRequest;
  if (request.op === 'exec') exec(request);
  else if (request.op === 'write') write(request);
  else {
    try {
      // -1: every process this user may signal in the pid namespace, except
      // this init (and the namespace's pid 1, bubblewrap's reaper).
      process.kill(-1, request.signal);
    } catch {
      // Nothing else is running.
    }
    if (request.id !== undefined) send({ ev: 'signaled', id: request.id });
  }
}

/**
 * Network `allowlist` (`--egress <port> <socket>`): the sandbox has no network
 * but its loopback; this bridges 127.0.0.1:<port> (its `HTTP(S)_PROXY`) to
 * the worker's egress proxy socket, which decides. Listening before `ready`,
 * so no process of the run can take the port first. The same few lines as
 * src/in-sandbox/model-bridge.ts: each file runs alone in the sandbox, so
 * neither can import the other.
 */
function bridgeEgress(port: number, socketPath: string): Promise<void> {
  const server = createServer((client) => {
    const upstream = connect(socketPath);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

async function main(): Promise<void> {
  const egress = process.argv.indexOf('--egress');
  if (egress >= 0) await bridgeEgress(Number(process.argv[egress + 1]), String(process.argv[egress + 2]));
  process.on('SIGTERM', () => {}); // only the worker ends the init: by closing stdin or killing the namespace
  createInterface({ input: process.stdin, crlfDelay: Infinity })
    .on('line', (line) => {
      if (line.trim()) handle(line);
    })
    .on('close', () => process.exit(0));
  send({ ev: 'ready', pid: process.pid });
}

main().catch((error: unknown) => {
  process.stderr.write(`sandbox init: ${(error as Error).message}\n`);
  process.exit(1);
});
