/**
 * Real git servers on loopback for the host-side git tests: `git daemon`
 * (fetch and push over git://) and `git http-backend` behind a node HTTP
 * server (smart HTTP), plus an HTTP server that only redirects. Each listens
 * on the loopback address it is given, records what reached it, and is
 * stopped by the test (the daemon by its PID).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../support/free-port.js';

const GIT_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent' };

/** A port nothing listens on right now (on `host`). */
export { freePort };

export interface GitDaemon {
  port: number;
  /** Connections the daemon accepted so far (its --verbose log). */
  connections(): number;
  log(): string;
  stop(): Promise<void>;
}

/** `git daemon` serving every repository under `root` (push too) on `host`. */
export async function startGitDaemon(root: string, host = '127.0.0.1'): Promise<GitDaemon> {
  const port = await freePort(host);
  const child: ChildProcess = spawn(
    'git',
    ['daemon', '--reuseaddr', '--verbose', '--export-all', '--enable=receive-pack', `--base-path=${root}`, `--listen=${host}`, `--port=${port}`, root],
    // Its own process group: the daemon forks a child per connection.
    { env: GIT_ENV, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!log.includes('Ready to rumble')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`git daemon did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    connections: () => (log.match(/Connection from/g) ?? []).length,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        process.kill(-child.pid, 'SIGKILL');
        await exited;
      }
    },
  };
}

export interface HttpServer {
  port: number;
  url: string;
  requests: string[];
  stop(): Promise<void>;
}

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

function stopper(server: Server): () => Promise<void> {
  return async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
}

/** `git http-backend` (CGI) for the repositories under `root`, on `host`. */
export async function startHttpGit(root: string, host = '127.0.0.1'): Promise<HttpServer> {
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://git');
    const env: Record<string, string> = {
      ...GIT_ENV,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REMOTE_ADDR: req.socket.remoteAddress ?? '',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
    };
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = req.headers['git-protocol'] as string;
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let body = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (body) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const [name, value] = [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      body = true;
      res.write(head.subarray(end + 4));
    });
    cgi.once('close', () => res.end());
  });
  const port = await listen(server, host);
  return { port, url: `http://${host}:${port}`, requests, stop: stopper(server) };
}

/** An HTTP server that answers every request with a redirect to the same path under `target`. */
export async function startRedirector(target: string, host = '127.0.0.1'): Promise<HttpServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(302, { location: `${target}${req.url ?? '/'}` }).end();
  });
  const port = await listen(server, host);
  return { port, url: `http://${host}:${port}`, requests, stop: stopper(server) };
}

/** Results settings for host-git tests: GitHub nowhere reachable (its API on a closed loopback port). */
export const SETTINGS = {
  branchPrefix: 'oz/',
  authorName: 'Oz',
  authorEmail: 'oz@localhost',
  githubUrl: 'https://github.com',
  githubGitUrl: 'https://github.com',
  githubApiUrl: 'http://127.0.0.1:9',
};
/** The environment of git run inside a test's direct sandbox: no user config, a fixed identity. */
export const ENV = {
  PATH: '/usr/bin:/bin',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'A',
  GIT_AUTHOR_EMAIL: 'a@example.test',
  GIT_COMMITTER_NAME: 'A',
  GIT_COMMITTER_EMAIL: 'a@example.test',
};
