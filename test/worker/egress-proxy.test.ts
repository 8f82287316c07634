import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_AUDIT_HOSTS } from '../../src/core/network-audit.js';
import { parseDomainRule } from '../../src/core/network-policy.js';
import { EgressProxy, type Denial, type EgressProxyOptions } from '../../src/worker/egress/egress-proxy.js';
import type { Lookup } from '../../src/worker/provisioning/remote-policy.js';
import { until } from '../support/until.js';

/**
 * The allowlist proxy over loopback only: its destinations are servers this
 * test starts on 127.0.0.1, reached under test names (`allowed.test`) through
 * an injected resolver, and made reachable by allowing 127.0.0.1/32 as an
 * internal range. Every other address a name resolves to here is refused
 * before a connection is made, so nothing leaves this machine.
 */

const proxies: EgressProxy[] = [];
const netServers: NetServer[] = [];
const httpServers: HttpServer[] = [];
const sockets = new Set<Socket>();
const dirs: string[] = [];

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  await Promise.all(
    netServers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    ),
  );
  await Promise.all(
    httpServers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Echo {
  port: number;
  /** Connections the server accepted so far. */
  connections: () => number;
  /** Connections of it that closed. */
  closed: () => number;
}

/** A TCP echo server on 127.0.0.1 that counts its connections. */
async function startEcho(): Promise<Echo> {
  let connections = 0;
  let closed = 0;
  const server = createNetServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => (closed += 1));
    socket.pipe(socket);
  });
  netServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, connections: () => connections, closed: () => closed };
}

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP server on 127.0.0.1 that records each request and answers 201 "hello client". */
async function startHttp(): Promise<{ port: number; requests: Recorded[]; server: HttpServer }> {
  const requests: Recorded[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(201, { 'content-type': 'text/plain', 'x-kept': 'yes', 'proxy-authenticate': 'Basic realm="upstream"' });
      res.end('hello client');
    });
  });
  httpServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, requests, server };
}

/** A port nothing listens on (just closed). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A resolver that knows only these names (a function: asked each time); anything else fails like NXDOMAIN. Records what it was asked. */
function lookupOf(table: Record<string, string[] | (() => string[])>, asked: string[] = []): Lookup {
  return async (host) => {
    asked.push(host);
    const found = table[host];
    if (!found) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return typeof found === 'function' ? found() : found;
  };
}

async function startProxy(options: Partial<EgressProxyOptions> & { rules?: EgressProxyOptions['rules'] }, listen: string | number = 0): Promise<EgressProxy> {
  const proxy = await EgressProxy.start(listen, { rules: [], internalRanges: [], ...options });
  proxies.push(proxy);
  return proxy;
}

const rules = (...texts: string[]): EgressProxyOptions['rules'] => texts.map(parseDomainRule);

/** A raw client connection that keeps what it received. */
class Client {
  received = Buffer.alloc(0);
  closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(readonly socket: Socket) {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  text(): string {
    return this.received.toString();
  }

  /** Until `check` holds or the connection closed. */
  async waitFor(check: () => boolean): Promise<void> {
    while (!check() && !this.closed) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
      });
    }
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

interface Answer {
  status: number;
  /** The status line and headers. */
  head: string;
  /** What followed the headers (a refusal's body; empty for a tunnel). */
  body: string;
  client: Client;
}

/** `CONNECT target` through the proxy (its port, or its unix socket), `extra` sent right after the request. A tunnel's answer returns at once, a refusal's once the proxy closed. */
async function connectVia(proxy: EgressProxy, target: string, extra = ''): Promise<Answer> {
  const socket = proxy.path ? netConnect(proxy.path) : netConnect(proxy.port, '127.0.0.1');
  const client = new Client(socket);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n${extra}`);
  await client.waitFor(() => client.received.includes('\r\n\r\n'));
  const end = client.received.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, head: client.text(), body: '', client };
  const head = client.received.subarray(0, end).toString();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  if (status === 200) {
    client.received = client.received.subarray(end + 4);
    return { status, head, body: '', client };
  }
  await client.waitFor(() => false);
  return { status, head, body: client.received.subarray(end + 4).toString(), client };
}

/** Send `text` through an open tunnel to an echo server and wait for it back. */
async function echoThrough(client: Client, text: string): Promise<string> {
  const before = client.received.length;
  client.socket.write(text);
  await client.waitFor(() => client.received.length >= before + Buffer.byteLength(text));
  return client.received.subarray(before).toString();
}

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain HTTP request to the proxy with `path` (an absolute URL, normally) as the request target; its Host header the URL's unless `headers` name one. */
function httpVia(proxy: EgressProxy, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpAnswer> {
  const host = URL.canParse(path) ? new URL(path).host : undefined;
  const headers = { ...(host !== undefined ? { host } : {}), ...options.headers };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxy.port, path, method: options.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the egress proxy: CONNECT by the rules', () => {
  it('tunnels to a host an exact rule names, both ways, and the name is matched without case', async () => {
    const echo = await startEcho();
    const asked: string[] = [];
    const proxy = await startProxy({ rules: rules(`allowed.test:${echo.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }, asked) });
    const answer = await connectVia(proxy, `allowed.test:${echo.port}`);
    expect(answer.head).toMatch(/^HTTP\/1\.1 200 Connection Established/);
    expect(await echoThrough(answer.client, 'ping through the tunnel')).toBe('ping through the tunnel');
    const upper = await connectVia(proxy, `ALLOWED.Test:${echo.port}`);
    expect(upper.status).toBe(200);
    expect(await echoThrough(upper.client, 'again')).toBe('again');
    expect(asked).toEqual(['allowed.test', 'allowed.test']);
    expect(echo.connections()).toBe(2);
  });

  it('forwards what the client sent with the CONNECT request itself', async () => {
    const echo = await startEcho();
    const proxy = await startProxy({ rules: rules(`allowed.test:${echo.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) });
    const answer = await connectVia(proxy, `allowed.test:${echo.port}`, 'early bytes');
    expect(answer.status).toBe(200);
    await answer.client.waitFor(() => answer.client.text().includes('early bytes'));
    expect(answer.client.text()).toBe('early bytes');
  });

  it('a wildcard rule allows names under its suffix at any depth, not the suffix itself', async () => {
    const echo = await startEcho();
    const lookup = lookupOf({ 'a.example.test': ['127.0.0.1'], 'a.b.example.test': ['127.0.0.1'], 'example.test': ['127.0.0.1'], 'badexample.test': ['127.0.0.1'] });
    const denials: Denial[] = [];
    const proxy = await startProxy({ rules: rules(`*.example.test:${echo.port}`), internalRanges: ['127.0.0.1/32'], lookup, onDenied: (d) => denials.push(d) });
    for (const name of ['a.example.test', 'a.b.example.test']) {
      const answer = await connectVia(proxy, `${name}:${echo.port}`);
      expect(answer.status, name).toBe(200);
      expect(await echoThrough(answer.client, name)).toBe(name);
    }
    for (const name of ['example.test', 'badexample.test']) {
      const answer = await connectVia(proxy, `${name}:${echo.port}`);
      expect(answer.status, name).toBe(403);
      expect(answer.body).toBe(`network denied: ${name}:${echo.port} (not in the allowlist)\n`);
    }
    expect(denials.map((d) => d.host)).toEqual(['example.test', 'badexample.test']);
    expect(echo.connections()).toBe(2);
  });

  it('a rule without a port allows the web: 443 through CONNECT, 80 as plain HTTP', async () => {
    const asked: string[] = [];
    // The name resolves to a refused address: a request the rule let through ends in "resolves to", one it did not in "not in the allowlist".
    const proxy = await startProxy({ rules: rules('ports.test'), lookup: lookupOf({ 'ports.test': ['10.0.0.1'] }, asked) });
    const tls = await connectVia(proxy, 'ports.test:443');
    expect(tls.status).toBe(403);
    expect(tls.body).toBe('network denied: ports.test:443 (resolves to 10.0.0.1, private)\n');
    const plain = await httpVia(proxy, 'http://ports.test/');
    expect(plain.status).toBe(403);
    expect(plain.body).toBe('network denied: ports.test:80 (resolves to 10.0.0.1, private)\n');
    expect(asked).toEqual(['ports.test', 'ports.test']);
    // Port 80 is never a raw tunnel unless a rule names it; the refusal says how to send it.
    const tunnel80 = await connectVia(proxy, 'ports.test:80');
    expect(tunnel80.status).toBe(403);
    expect(tunnel80.body).toBe('network denied: ports.test:80 (not in the allowlist on port 80: send plain HTTP as http://, not through CONNECT)\n');
    for (const port of [8080, 8443, 22]) {
      const answer = await connectVia(proxy, `ports.test:${port}`);
      expect(answer.status).toBe(403);
      expect(answer.body).toBe(`network denied: ports.test:${port} (not in the allowlist)\n`);
    }
    const http443 = await httpVia(proxy, 'http://ports.test:443/');
    expect(http443.body).toBe('network denied: ports.test:443 (not in the allowlist)\n');
    // A name not allowed is never resolved.
    expect(asked).toEqual(['ports.test', 'ports.test']);
  });

  it('a rule with a port allows that port only', async () => {
    const echo = await startEcho();
    const proxy = await startProxy({ rules: rules(`ports.test:${echo.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'ports.test': ['127.0.0.1'] }) });
    const allowed = await connectVia(proxy, `ports.test:${echo.port}`);
    expect(allowed.status).toBe(200);
    expect(await echoThrough(allowed.client, 'x')).toBe('x');
    for (const port of [443, 80, echo.port + 1 > 65535 ? echo.port - 1 : echo.port + 1]) {
      const answer = await connectVia(proxy, `ports.test:${port}`);
      expect(answer.body).toBe(`network denied: ports.test:${port} (not in the allowlist)\n`);
    }
    expect(echo.connections()).toBe(1);
  });

  it('refuses a name not on the list with 403, says why, and reports it', async () => {
    const asked: string[] = [];
    const denials: Denial[] = [];
    const proxy = await startProxy({ rules: rules('allowed.test'), lookup: lookupOf({ 'denied.test': ['127.0.0.1'] }, asked), onDenied: (d) => denials.push(d) });
    const answer = await connectVia(proxy, 'denied.test:443');
    expect(answer.head).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer.head).toContain('X-Oz-Denied: not in the allowlist');
    expect(answer.body).toBe('network denied: denied.test:443 (not in the allowlist)\n');
    expect(answer.client.closed).toBe(true);
    expect(denials).toEqual([{ host: 'denied.test', port: 443, reason: 'not in the allowlist' }]);
    expect(asked).toEqual([]);
  });

  it('answers 400 to a CONNECT target that is not host:port', async () => {
    const proxy = await startProxy({ rules: rules('allowed.test') });
    for (const target of ['allowed.test', 'allowed.test:0', 'allowed.test:70000', 'allowed.test:443x']) {
      const answer = await connectVia(proxy, target);
      expect(answer.head, target).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(answer.body).toMatch(/^CONNECT needs host:port/);
    }
    expect(proxy.audit().hosts).toEqual([]);
  });

  it('answers 502 when the allowed destination refuses the connection', async () => {
    const port = await closedPort();
    const proxy = await startProxy({ rules: rules(`allowed.test:${port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) });
    const answer = await connectVia(proxy, `allowed.test:${port}`);
    expect(answer.head).toMatch(/^HTTP\/1\.1 502 Bad Gateway/);
    expect(answer.body).toContain(`allowed.test:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
    // Neither a connection nor a denial.
    const audit = proxy.audit();
    expect(audit.hosts.filter((h) => h.connections > 0 || h.denied > 0)).toEqual([]);
    expect(audit.other).toEqual({ connections: 0, denied: 0, bytes_sent: 0, bytes_received: 0 });
  });
});

describe('the egress proxy: plain HTTP by absolute URL', () => {
  it('forwards to the allowed host: method, path, Host and body kept, hop-by-hop headers dropped both ways', async () => {
    const upstream = await startHttp();
    const proxy = await startProxy({ rules: rules(`allowed.test:${upstream.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) });
    const answer = await httpVia(proxy, `http://allowed.test:${upstream.port}/x/y?z=1`, {
      method: 'POST',
      headers: {
        host: `allowed.test:${upstream.port}`,
        'content-type': 'text/plain',
        'x-custom': 'kept',
        'proxy-authorization': 'Basic c2VjcmV0',
        'proxy-connection': 'keep-alive',
        'keep-alive': 'timeout=5',
        te: 'trailers',
      },
      body: 'hello upstream',
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toBe('hello client');
    expect(answer.headers['x-kept']).toBe('yes');
    expect(answer.headers['proxy-authenticate']).toBeUndefined();
    expect(upstream.requests).toHaveLength(1);
    const seen = upstream.requests[0] as Recorded;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/x/y?z=1');
    expect(seen.body).toBe('hello upstream');
    expect(seen.headers.host).toBe(`allowed.test:${upstream.port}`);
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers['content-type']).toBe('text/plain');
    for (const name of ['proxy-authorization', 'proxy-connection', 'keep-alive', 'te']) expect(seen.headers[name], name).toBeUndefined();
  });

  it("answers 400 to a Host header that is not the URL's host, forwarding nothing", async () => {
    const upstream = await startHttp();
    const proxy = await startProxy({ rules: rules(`allowed.test:${upstream.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) });
    const answer = await httpVia(proxy, `http://allowed.test:${upstream.port}/`, { headers: { host: 'internal.admin' } });
    expect(answer.status).toBe(400);
    expect(answer.body).toBe(`the Host header (internal.admin) is not the URL's host (allowed.test:${upstream.port})\n`);
    expect(upstream.requests).toEqual([]);
  });

  it('refuses a name not on the list with 403 and its reason, on the default port 80', async () => {
    const denials: Denial[] = [];
    const proxy = await startProxy({ rules: rules('allowed.test'), lookup: lookupOf({}), onDenied: (d) => denials.push(d) });
    const answer = await httpVia(proxy, 'http://denied.test/x');
    expect(answer.status).toBe(403);
    expect(answer.headers['x-oz-denied']).toBe('not in the allowlist');
    expect(answer.body).toBe('network denied: denied.test:80 (not in the allowlist)\n');
    const other = await httpVia(proxy, 'http://allowed.test:8080/');
    expect(other.body).toBe('network denied: allowed.test:8080 (not in the allowlist)\n');
    expect(denials).toEqual([
      { host: 'denied.test', port: 80, reason: 'not in the allowlist' },
      { host: 'allowed.test', port: 8080, reason: 'not in the allowlist' },
    ]);
  });

  it('answers 400 to a request that is not an absolute http:// URL', async () => {
    const proxy = await startProxy({ rules: rules('allowed.test') });
    const relative = await httpVia(proxy, '/x');
    expect(relative.status).toBe(400);
    expect(relative.body).toBe('this is an HTTP proxy: send an absolute http:// URL, or CONNECT host:port\n');
    const https = await httpVia(proxy, 'https://allowed.test/x');
    expect(https.status).toBe(400);
    expect(https.body).toBe('only http:// URLs are forwarded; https goes through CONNECT\n');
    expect(proxy.audit().hosts).toEqual([]);
  });

  it('answers 502 when the allowed destination refuses the connection', async () => {
    const port = await closedPort();
    const proxy = await startProxy({ rules: rules(`allowed.test:${port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) });
    const answer = await httpVia(proxy, `http://allowed.test:${port}/`);
    expect(answer.status).toBe(502);
    expect(answer.body).toContain(`allowed.test:${port}: connect ECONNREFUSED`);
  });
});

describe('the egress proxy: addresses', () => {
  const refusedAnswers: [string, string][] = [
    ['127.0.0.1', '127.0.0.1, loopback'],
    ['127.8.9.10', '127.8.9.10, loopback'],
    ['10.1.2.3', '10.1.2.3, private'],
    ['172.16.0.1', '172.16.0.1, private'],
    ['192.168.0.1', '192.168.0.1, private'],
    ['169.254.169.254', '169.254.169.254, link-local (cloud metadata)'],
    ['100.64.0.1', '100.64.0.1, shared address space (CGNAT)'],
    ['224.0.0.1', '224.0.0.1, multicast'],
    ['240.0.0.1', '240.0.0.1, reserved (and broadcast)'],
    ['0.0.0.0', '0.0.0.0, unspecified ("this network")'],
    ['::1', '::1, loopback'],
    ['fd00::', 'fd00::, unique-local'],
    ['fe80::1', 'fe80::1, link-local'],
    ['::ffff:127.0.0.1', '127.0.0.1, loopback'],
    ['::ffff:a9fe:a9fe', '169.254.169.254, link-local (cloud metadata)'],
    ['64:ff9b::a9fe:a9fe', '64:ff9b::a9fe:a9fe, link-local (cloud metadata), as 169.254.169.254 inside an IPv6 address'],
  ];

  it('refuses a name that resolves to an internal address, before connecting (CONNECT)', async () => {
    // A listener is there, on 127.0.0.1; no internal range is allowed.
    const echo = await startEcho();
    let answer: string[] = [];
    const denials: Denial[] = [];
    const proxy = await startProxy({ rules: rules(`evil.test:${echo.port}`), lookup: lookupOf({ 'evil.test': () => answer }), onDenied: (d) => denials.push(d) });
    for (const [address, shown] of refusedAnswers) {
      answer = [address];
      const refused = await connectVia(proxy, `evil.test:${echo.port}`);
      expect(refused.status, address).toBe(403);
      expect(refused.head).toContain(`X-Oz-Denied: resolves to ${shown}`);
      expect(refused.body).toBe(`network denied: evil.test:${echo.port} (resolves to ${shown})\n`);
    }
    expect(denials).toHaveLength(refusedAnswers.length);
    expect(denials[0]).toEqual({ host: 'evil.test', port: echo.port, reason: 'resolves to 127.0.0.1, loopback' });
    expect(echo.connections()).toBe(0);
    expect(proxy.audit().hosts).toEqual([
      {
        host: 'evil.test',
        port: echo.port,
        connections: 0,
        denied: refusedAnswers.length,
        bytes_sent: 0,
        bytes_received: 0,
        denied_reason: `resolves to ${refusedAnswers[refusedAnswers.length - 1]?.[1]}`,
      },
    ]);
  });

  it('refuses a name that resolves to an internal address, before connecting (HTTP)', async () => {
    const upstream = await startHttp();
    let answer: string[] = [];
    const proxy = await startProxy({ rules: rules(`evil.test:${upstream.port}`), lookup: lookupOf({ 'evil.test': () => answer }) });
    for (const [address, shown] of refusedAnswers) {
      answer = [address];
      const refused = await httpVia(proxy, `http://evil.test:${upstream.port}/secret`);
      expect(refused.status, address).toBe(403);
      expect(refused.headers['x-oz-denied']).toBe(`resolves to ${shown}`);
      expect(refused.body).toBe(`network denied: evil.test:${upstream.port} (resolves to ${shown})\n`);
    }
    expect(upstream.requests).toEqual([]);
  });

  it('with several answers, connects only to one it may reach', async () => {
    const echo = await startEcho();
    let answer: string[] = [];
    const denials: Denial[] = [];
    const proxy = await startProxy({
      rules: rules(`mixed.test:${echo.port}`),
      internalRanges: ['127.0.0.1/32'],
      lookup: lookupOf({ 'mixed.test': () => answer }),
      onDenied: (d) => denials.push(d),
    });
    for (const found of [
      ['10.0.0.1', '127.0.0.1'],
      ['127.0.0.1', '10.0.0.1'],
      ['not an address', '169.254.169.254', '::ffff:127.0.0.1'],
    ]) {
      answer = found;
      const tunnel = await connectVia(proxy, `mixed.test:${echo.port}`);
      expect(tunnel.status, found.join(' ')).toBe(200);
      expect(await echoThrough(tunnel.client, 'hi')).toBe('hi');
    }
    expect(echo.connections()).toBe(3);
    answer = ['10.0.0.1', '192.168.1.1', '127.0.0.2'];
    const refused = await connectVia(proxy, `mixed.test:${echo.port}`);
    expect(refused.status).toBe(403);
    // The first refused address is named.
    expect(refused.body).toBe(`network denied: mixed.test:${echo.port} (resolves to 10.0.0.1, private)\n`);
    expect(denials).toHaveLength(1);
    expect(echo.connections()).toBe(3);
  });

  it('a name with no usable address is refused, but not counted as a denial', async () => {
    let answer: string[] = [];
    const denials: Denial[] = [];
    const proxy = await startProxy({ rules: rules('empty.test'), lookup: lookupOf({ 'empty.test': () => answer }), onDenied: (d) => denials.push(d) });
    for (const found of [[], ['garbage']]) {
      answer = found;
      const refused = await connectVia(proxy, 'empty.test:443');
      expect(refused.status).toBe(403);
      expect(refused.body).toBe('network denied: empty.test:443 (empty.test has no address)\n');
    }
    expect(denials).toEqual([]);
    const audit = proxy.audit();
    expect(audit.hosts.filter((h) => h.connections > 0 || h.denied > 0)).toEqual([]);
    expect(audit.other.denied).toBe(0);
  });

  it('resolves again for each connection, so a rebinding name cannot reach a refused address', async () => {
    const echo = await startEcho();
    let calls = 0;
    const proxy = await startProxy({
      rules: rules(`rebind.test:${echo.port}`),
      internalRanges: ['127.0.0.1/32'],
      lookup: lookupOf({ 'rebind.test': () => (++calls === 1 ? ['127.0.0.1'] : ['10.9.9.9']) }),
    });
    const first = await connectVia(proxy, `rebind.test:${echo.port}`);
    expect(first.status).toBe(200);
    expect(await echoThrough(first.client, 'first')).toBe('first');
    const second = await connectVia(proxy, `rebind.test:${echo.port}`);
    expect(second.status).toBe(403);
    expect(second.body).toBe(`network denied: rebind.test:${echo.port} (resolves to 10.9.9.9, private)\n`);
    expect(calls).toBe(2);
    expect(echo.connections()).toBe(1);
  });

  it('refuses an address literal in CONNECT unless an allowed range holds it, without resolving anything', async () => {
    const echo = await startEcho();
    const asked: string[] = [];
    const denials: Denial[] = [];
    const lookup = lookupOf({}, asked);
    const closed = await startProxy({ rules: rules('allowed.test'), lookup, onDenied: (d) => denials.push(d) });
    const reason = 'an address; the allowlist names domains';
    for (const [target, host] of [
      [`127.0.0.1:${echo.port}`, '127.0.0.1'],
      [`[::1]:${echo.port}`, '::1'],
      [`[::ffff:127.0.0.1]:${echo.port}`, '::ffff:127.0.0.1'],
      ['169.254.169.254:80', '169.254.169.254'],
      // A public address too: rules name domains.
      ['93.184.216.34:443', '93.184.216.34'],
    ] as const) {
      const refused = await connectVia(closed, target);
      expect(refused.status, target).toBe(403);
      const shown = host.includes(':') ? `[${host}]` : host;
      expect(refused.body).toBe(`network denied: ${shown}:${target.slice(target.lastIndexOf(':') + 1)} (${reason})\n`);
    }
    expect(denials).toHaveLength(5);
    expect(echo.connections()).toBe(0);

    const open = await startProxy({ rules: [], internalRanges: ['127.0.0.1/32'], lookup });
    for (const target of [`127.0.0.1:${echo.port}`, `[::ffff:127.0.0.1]:${echo.port}`]) {
      const tunnel = await connectVia(open, target);
      expect(tunnel.status, target).toBe(200);
      expect(await echoThrough(tunnel.client, target)).toBe(target);
    }
    const outside = await connectVia(open, `127.0.0.2:${echo.port}`);
    expect(outside.status).toBe(403);
    expect(outside.body).toBe(`network denied: 127.0.0.2:${echo.port} (${reason})\n`);
    expect(echo.connections()).toBe(2);
    expect(asked).toEqual([]);
  });

  it('refuses an address literal in an HTTP URL unless an allowed range holds it', async () => {
    const upstream = await startHttp();
    const reason = 'an address; the allowlist names domains';
    const closed = await startProxy({ rules: rules('allowed.test'), lookup: lookupOf({}) });
    const refused = await httpVia(closed, `http://127.0.0.1:${upstream.port}/x`);
    expect(refused.status).toBe(403);
    expect(refused.body).toBe(`network denied: 127.0.0.1:${upstream.port} (${reason})\n`);
    const refused6 = await httpVia(closed, `http://[::1]:${upstream.port}/x`);
    expect(refused6.status).toBe(403);
    expect(refused6.body).toBe(`network denied: [::1]:${upstream.port} (${reason})\n`);
    expect(upstream.requests).toEqual([]);

    const open = await startProxy({ rules: [], internalRanges: ['127.0.0.1/32'], lookup: lookupOf({}) });
    const allowed = await httpVia(open, `http://127.0.0.1:${upstream.port}/x`, { headers: { host: `127.0.0.1:${upstream.port}` } });
    expect(allowed.status).toBe(201);
    expect(allowed.body).toBe('hello client');
    expect(upstream.requests.map((r) => r.url)).toEqual(['/x']);
  });

  it('answers 502 to a name that does not resolve, and does not count it as a denial', async () => {
    const denials: Denial[] = [];
    const proxy = await startProxy({ rules: rules('gone.test'), lookup: lookupOf({}), onDenied: (d) => denials.push(d) });
    const tunnel = await connectVia(proxy, 'gone.test:443');
    expect(tunnel.head).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(tunnel.body).toContain('gone.test does not resolve (getaddrinfo ENOTFOUND gone.test)');
    const plain = await httpVia(proxy, 'http://gone.test/');
    expect(plain.status).toBe(502);
    expect(plain.body).toContain('gone.test does not resolve (getaddrinfo ENOTFOUND gone.test)');
    expect(denials).toEqual([]);
    const audit = proxy.audit();
    expect(audit.hosts.filter((h) => h.connections > 0 || h.denied > 0)).toEqual([]);
    expect(audit.other.denied).toBe(0);
  });
});

describe('the egress proxy: audit and lifetime', () => {
  it('counts connections, refusals and the bytes each way', async () => {
    const echo = await startEcho();
    const upstream = await startHttp();
    const proxy = await startProxy({
      rules: rules(`allowed.test:${echo.port}`, `web.test:${upstream.port}`),
      internalRanges: ['127.0.0.1/32'],
      lookup: lookupOf({ 'allowed.test': ['127.0.0.1'], 'web.test': ['127.0.0.1'] }),
    });
    const tunnel = await connectVia(proxy, `allowed.test:${echo.port}`);
    expect(await echoThrough(tunnel.client, 'twelve bytes')).toBe('twelve bytes');
    tunnel.client.socket.end();
    await until('the tunnel is counted', () => (proxy.audit().hosts.find((h) => h.host === 'allowed.test')?.bytes_received ?? 0) > 0);
    await connectVia(proxy, 'denied.test:443');
    await connectVia(proxy, 'denied.test:443');
    const web = await httpVia(proxy, `http://web.test:${upstream.port}/`, { headers: { host: `web.test:${upstream.port}` } });
    expect(web.status).toBe(201);
    // The proxy's upstream connection is counted when it closes.
    upstream.server.closeAllConnections();
    await until('the HTTP request is counted', () => (proxy.audit().hosts.find((h) => h.host === 'web.test')?.bytes_received ?? 0) > 0);
    const audit = proxy.audit();
    expect(audit.policy).toBe('allowlist');
    expect(audit.hosts.find((h) => h.host === 'allowed.test')).toEqual({ host: 'allowed.test', port: echo.port, connections: 1, denied: 0, bytes_sent: 12, bytes_received: 12 });
    expect(audit.hosts.find((h) => h.host === 'denied.test')).toEqual({
      host: 'denied.test',
      port: 443,
      connections: 0,
      denied: 2,
      bytes_sent: 0,
      bytes_received: 0,
      denied_reason: 'not in the allowlist',
    });
    const webEntry = audit.hosts.find((h) => h.host === 'web.test');
    expect(webEntry?.connections).toBe(1);
    expect(webEntry?.bytes_sent).toBeGreaterThan(0);
    expect(webEntry?.bytes_received).toBeGreaterThan('hello client'.length);
    expect(audit.other).toEqual({ connections: 0, denied: 0, bytes_sent: 0, bytes_received: 0 });
    // audit() is a copy.
    audit.hosts[0]!.connections = 99;
    expect(proxy.audit().hosts[0]?.connections).not.toBe(99);
  });

  it(`keeps at most ${MAX_AUDIT_HOSTS} destinations and sums the rest into other; refusals do not crowd out what was reached`, async () => {
    const echo = await startEcho();
    let denied = 0;
    const proxy = await startProxy({
      rules: rules(`allowed.test:${echo.port}`),
      internalRanges: ['127.0.0.1/32'],
      lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }),
      onDenied: () => (denied += 1),
    });
    const total = MAX_AUDIT_HOSTS + 5;
    for (let start = 0; start < total; start += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, total - start) }, async (_, i) => {
          const answer = await connectVia(proxy, `n${start + i}.test:443`);
          expect(answer.status).toBe(403);
        }),
      );
    }
    expect(denied).toBe(total);
    let audit = proxy.audit();
    expect(audit.hosts).toHaveLength(MAX_AUDIT_HOSTS);
    expect(audit.other).toEqual({ connections: 0, denied: 5, bytes_sent: 0, bytes_received: 0 });
    expect(audit.hosts.reduce((sum, h) => sum + h.denied, 0) + audit.other.denied).toBe(total);

    // A destination already kept is still counted on its own.
    const kept = audit.hosts[0] as (typeof audit.hosts)[number];
    await connectVia(proxy, `${kept.host}:${kept.port}`);
    // A destination reached after all those refusals is kept too, the bound still holding.
    const tunnel = await connectVia(proxy, `allowed.test:${echo.port}`);
    expect(tunnel.status).toBe(200);
    expect(await echoThrough(tunnel.client, 'over')).toBe('over');
    tunnel.client.socket.end();
    await until('the tunnel is counted', () => (proxy.audit().hosts.find((h) => h.host === 'allowed.test')?.bytes_received ?? 0) > 0);
    audit = proxy.audit();
    expect(audit.hosts).toHaveLength(MAX_AUDIT_HOSTS);
    expect(audit.hosts.find((h) => h.host === 'allowed.test')).toEqual({ host: 'allowed.test', port: echo.port, connections: 1, denied: 0, bytes_sent: 4, bytes_received: 4 });
    expect(audit.hosts.find((h) => h.host === kept.host)?.denied).toBe(2);
    expect(audit.other.connections).toBe(0);
    expect(audit.hosts.reduce((sum, h) => sum + h.denied, 0) + audit.other.denied).toBe(total + 1);
  });

  it('close() ends the tunnels still open', async () => {
    const echo = await startEcho();
    const proxy = await startProxy({ rules: rules(`allowed.test:${echo.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) });
    const tunnels = [await connectVia(proxy, `allowed.test:${echo.port}`), await connectVia(proxy, `allowed.test:${echo.port}`)];
    for (const tunnel of tunnels) expect(await echoThrough(tunnel.client, 'open')).toBe('open');
    await proxy.close();
    for (const tunnel of tunnels) {
      await tunnel.client.waitFor(() => false);
      expect(tunnel.client.closed).toBe(true);
    }
    await until('the destination sees both closed', () => echo.closed() === 2);
    expect(echo.connections()).toBe(2);
  });

  it('listens on a unix socket anyone may connect to, replacing a stale file, and removes it when closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oz-egress-proxy-'));
    dirs.push(dir);
    const path = join(dir, 'proxy.sock');
    writeFileSync(path, 'stale');
    const echo = await startEcho();
    const proxy = await startProxy({ rules: rules(`allowed.test:${echo.port}`), internalRanges: ['127.0.0.1/32'], lookup: lookupOf({ 'allowed.test': ['127.0.0.1'] }) }, path);
    expect(proxy.path).toBe(path);
    expect(statSync(path).isSocket()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o666);
    const tunnel = await connectVia(proxy, `allowed.test:${echo.port}`);
    expect(tunnel.status).toBe(200);
    expect(await echoThrough(tunnel.client, 'over a unix socket')).toBe('over a unix socket');
    const refused = await connectVia(proxy, 'denied.test:443');
    expect(refused.body).toBe('network denied: denied.test:443 (not in the allowlist)\n');
    await proxy.close();
    expect(existsSync(path)).toBe(false);
  });
});
