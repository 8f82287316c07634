import { chmodSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { canonical, formatAddress, parseAddress, reasonFor } from '../../core/ip-address.js';
import { boundAudit, emptyCounts, MAX_AUDIT_HOSTS, type AuditCounts, type AuditHost, type NetworkAudit } from '../../core/network-audit.js';
import { ruleAllows, type DomainRule } from '../../core/network-policy.js';
import { systemLookup, type Lookup } from '../provisioning/remote-policy.js';
import { EgressRanges } from './egress-ranges.js';
import { MAX_HELLO_BYTES, readClientHello } from './client-hello.js';

/** A request the policy refused, before any connection was made. */
export interface Denial {
  host: string;
  port: number;
  /** For the person: "not in the allowlist", "resolves to 10.0.0.5, private". */
  reason: string;
}

export interface EgressProxyOptions {
  rules: readonly DomainRule[];
  /** Internal ranges the operator allowed (CIDR), reachable although internal. */
  internalRanges: readonly string[];
  /** How names are resolved (tests inject one); default getaddrinfo. */
  lookup?: Lookup;
  onDenied?: (denial: Denial) => void;
  connectTimeoutMs?: number;
  /** Concurrent connections at most (a run cannot use up the worker's sockets). */
  maxConnections?: number;
}

/** Names resolved at once per run at most (each holds one of libuv's few threads). */
const MAX_LOOKUPS = 16;
/** A tunnel with no traffic either way this long is closed. */
const TUNNEL_IDLE_MS = 10 * 60_000;

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

type Decision = { allowed: true; address: string } | { allowed: false; status: number; reason: string; denial: boolean };

/**
 * The worker-side proxy of a run with network `allowlist` (docs/network.md):
 * its only way out. `CONNECT host:port` (TLS, by name; nothing is decrypted)
 * and plain HTTP by absolute URL, each allowed only if a domain rule names the
 * host and port; the proxy resolves the name itself and connects to a checked
 * address only, never an internal one (loopback, private, link-local with the
 * metadata endpoint, CGNAT, multicast, reserved) unless the operator allowed
 * its range, so DNS rebinding cannot get around the rules. Everything is
 * decided before any connection is made.
 *
 * Written on node:http rather than taken from a proxy package: none lets the
 * caller resolve and pin the destination address, which is the point here.
 */
export class EgressProxy {
  /** Destinations connected to, and destinations refused: bounded apart, so refusals cannot crowd out what was reached. */
  private readonly hosts = new Map<string, AuditHost>();
  private readonly denials = new Map<string, AuditHost>();
  private readonly other = emptyCounts();
  private readonly ranges: EgressRanges;
  private readonly lookup: Lookup;
  private readonly open = new Set<Duplex>();
  private lookups = 0;

  private constructor(
    private readonly server: Server,
    private readonly options: EgressProxyOptions,
    readonly path: string | null,
  ) {
    this.ranges = new EgressRanges(options.internalRanges);
    this.lookup = options.lookup ?? systemLookup;
  }

  /** Listen on a unix socket (`listen` a path: the run's, bound into its sandbox) or a loopback port (a number; 0: any). */
  static async start(listen: string | number, options: EgressProxyOptions): Promise<EgressProxy> {
    const server = createServer();
    server.maxConnections = options.maxConnections ?? 256;
    // A request (or a CONNECT) whose headers never end is dropped, not held.
    server.headersTimeout = 10_000;
    server.requestTimeout = 0;
    const proxy = new EgressProxy(server, options, typeof listen === 'string' ? listen : null);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      req.on('error', () => res.destroy());
      proxy.forward(req, res).catch(() => res.destroy());
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      proxy.tunnel(req, socket, head).catch(() => socket.destroy());
    });
    server.on('clientError', (_error, socket) => socket.destroy());
    if (typeof listen === 'string') rmSync(listen, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (typeof listen === 'string') server.listen(listen, () => resolve());
      else server.listen(listen, '127.0.0.1', () => resolve());
    });
    // The sandbox's uid is not the worker's; only its own sandbox has the socket's directory bound.
    if (typeof listen === 'string') chmodSync(listen, 0o666);
    return proxy;
  }

  /** The loopback port (when started on a port). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** What went through so far (bounded: the busiest destinations, the rest in `other`). */
  audit(): NetworkAudit {
    const hosts = [...this.hosts.values(), ...this.denials.values()].map((h) => ({ ...h }));
    return boundAudit({ policy: 'allowlist', hosts, other: { ...this.other } });
  }

  async close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.path) rmSync(this.path, { force: true });
  }

  /** The audit entry of host:port in `map`, or the overflow once the bound is reached. */
  private entry(map: Map<string, AuditHost>, host: string, port: number): AuditHost | AuditCounts {
    const key = `${host}:${port}`;
    let found = map.get(key);
    if (!found) {
      if (map.size >= MAX_AUDIT_HOSTS) return this.other;
      found = { host, port, ...emptyCounts() };
      map.set(key, found);
    }
    return found;
  }

  private async decide(host: string, port: number, kind: 'connect' | 'http'): Promise<Decision> {
    const literal = parseAddress(host);
    if (literal) {
      // Rules name domains; an address is reachable only in a range the operator allowed.
      const bytes = canonical(literal);
      if (this.ranges.allows(bytes)) return { allowed: true, address: formatAddress(bytes) };
      return { allowed: false, status: 403, reason: 'an address; the allowlist names domains', denial: true };
    }
    if (!this.options.rules.some((rule) => ruleAllows(rule, host, port, kind))) {
      const hint =
        kind === 'connect' && port === 80 && this.options.rules.some((rule) => ruleAllows(rule, host, 80, 'http'))
          ? ' on port 80: send plain HTTP as http://, not through CONNECT'
          : '';
      return { allowed: false, status: 403, reason: `not in the allowlist${hint}`, denial: true };
    }
    if (this.lookups >= MAX_LOOKUPS) return { allowed: false, status: 503, reason: 'too many names being resolved at once; try again', denial: false };
    let found: string[];
    this.lookups += 1;
    try {
      found = await this.lookup(host);
    } catch (error) {
      return { allowed: false, status: 502, reason: `${host} does not resolve (${(error as Error).message})`, denial: false };
    } finally {
      this.lookups -= 1;
    }
    let refused: string | null = null;
    for (const address of found) {
      const bytes = parseAddress(address);
      if (!bytes) continue;
      const checked = canonical(bytes);
      const why = reasonFor(checked);
      if (why === null || this.ranges.allows(checked)) return { allowed: true, address: formatAddress(checked) };
      refused ??= `resolves to ${formatAddress(checked)}, ${why}`;
    }
    return { allowed: false, status: 403, reason: refused ?? `${host} has no address`, denial: refused !== null };
  }

  /** Count a refusal (a denial: in the audit, and told); returns the body the client gets. */
  private refuse(host: string, port: number, reason: string, denial: boolean): string {
    if (denial) {
      const entry = this.entry(this.denials, host, port);
      entry.denied += 1;
      if ('host' in entry) entry.denied_reason = reason;
      this.options.onDenied?.({ host, port, reason });
    }
    return `network denied: ${hostPort(host, port)} (${reason})\n`;
  }

  private async tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = splitHostPort(req.url ?? '');
    if (!target) {
      client.end(plainAnswer(400, 'CONNECT needs host:port, with a host name or an address\n'));
      return;
    }
    const decision = await this.decide(target.host, target.port, 'connect');
    if (!decision.allowed) {
      client.end(plainAnswer(decision.status, this.refuse(target.host, target.port, decision.reason, decision.denial), decision.reason));
      return;
    }
    const upstream = netConnect({ host: decision.address, port: target.port });
    this.track(client, upstream);
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(new Error('connect timed out')), this.options.connectTimeoutMs ?? 10_000);
    upstream.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      let refusedTls = false;
      // Counted once it closes, unless its TLS was refused (then it is a denial, not a connection).
      upstream.once('close', () => {
        if (refusedTls) return;
        const entry = this.entry(this.hosts, target.host, target.port);
        entry.connections += 1;
        entry.bytes_sent += upstream.bytesWritten;
        entry.bytes_received += upstream.bytesRead;
      });
      upstream.setTimeout(TUNNEL_IDLE_MS, () => upstream.destroy());
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      // What the destination says goes through at once (a protocol whose server speaks first, as ssh).
      upstream.pipe(client);
      // TLS in the tunnel must be for the name it was opened for (its SNI); anything else is carried as is.
      let first = head;
      const judge = (): void => {
        const read = readClientHello(first);
        if (read.kind === 'more' && first.length < MAX_HELLO_BYTES) return;
        client.off('data', more);
        client.pause();
        // A tunnel to an address is the operator's range, trusted as such: only names are held to their SNI.
        if (read.kind === 'hello' && read.name !== null && read.name !== target.host && parseAddress(target.host) === null) {
          refusedTls = true;
          this.refuse(target.host, target.port, `the tunnel's TLS asks for ${read.name.slice(0, 253)}, not ${target.host}`, true);
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(first);
        client.pipe(upstream);
        client.resume();
      };
      const more = (chunk: Buffer): void => {
        first = Buffer.concat([first, chunk]);
        judge();
      };
      client.on('data', more);
      if (first.length > 0) judge();
    });
    upstream.once('error', (error) => {
      clearTimeout(timer);
      if (!connected && !client.writableEnded) client.end(plainAnswer(502, `${target.host}:${target.port}: ${error.message}\n`));
      else client.destroy();
    });
    upstream.once('close', (hadError: boolean) => {
      clearTimeout(timer);
      // A clean close ends the client once what is still on its way has been written (destroying it
      // here would cut the end off a download); a broken one breaks it too.
      if (hadError || !connected) client.destroy();
      else client.end();
    });
    client.once('close', () => upstream.destroy());
  }

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('this is an HTTP proxy: send an absolute http:// URL, or CONNECT host:port\n');
      return;
    }
    if (url.protocol !== 'http:') {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('only http:// URLs are forwarded; https goes through CONNECT\n');
      return;
    }
    const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
    const port = url.port ? Number(url.port) : 80;
    if (!validHost(host)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('not a host name or address\n');
      return;
    }
    // The Host header is what a shared host routes by: it must be the URL's host, or anything on that address could be reached.
    const sentHost = req.headers.host === undefined ? undefined : hostHeader(req.headers.host, url.port);
    if (sentHost !== undefined && sentHost !== hostHeader(url.host, url.port)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`the Host header (${headerSafe(req.headers.host ?? '')}) is not the URL's host (${url.host})\n`);
      return;
    }
    const encoding = req.headers['transfer-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'chunked') {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('only the chunked transfer encoding is forwarded\n');
      return;
    }
    const decision = await this.decide(host, port, 'http');
    if (!decision.allowed) {
      const body = this.refuse(host, port, decision.reason, decision.denial);
      res.writeHead(decision.status, { 'content-type': 'text/plain', 'x-oz-denied': headerSafe(decision.reason), connection: 'close' }).end(body);
      return;
    }
    const entry = this.entry(this.hosts, host, port);
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: url.host };
    for (const name of HOP_BY_HOP) delete headers[name];
    // A body the client framed in chunks goes on framed in chunks (never as raw bytes after a GET's headers).
    if (encoding !== undefined) headers['transfer-encoding'] = 'chunked';
    // No agent: a socket of its own per request, never one pooled with another run's.
    const upstream = httpRequest({
      host: decision.address,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      setHost: false,
      agent: false,
      timeout: this.options.connectTimeoutMs ?? 10_000,
    });
    entry.connections += 1;
    upstream.on('socket', (socket: Socket) => {
      this.track(socket);
      socket.once('close', () => {
        entry.bytes_sent += socket.bytesWritten;
        entry.bytes_received += socket.bytesRead;
      });
    });
    res.once('close', () => upstream.destroy());
    upstream.on('timeout', () => upstream.destroy(new Error('timed out')));
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`${host}:${port}: ${error.message}\n`);
      else res.destroy();
    });
    upstream.on('response', (answer) => {
      const out = { ...answer.headers };
      for (const name of HOP_BY_HOP) delete out[name];
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    req.pipe(upstream);
  }

  private track(...sockets: Duplex[]): void {
    for (const socket of sockets) {
      if (this.open.has(socket)) continue;
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
    }
  }
}

/** `host:port` or `[v6]:port` of a CONNECT line, the host lowercase and without a trailing dot; null when it is not one. */
function splitHostPort(text: string): { host: string; port: number } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!match) return null;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return null;
  const host = (match[1] as string)
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  return validHost(host) ? { host, port } : null;
}

/** A host name (letters, digits, "-", "_", dots; at most 253) or an IP address: nothing else is looked up or recorded. */
function validHost(host: string): boolean {
  return (host.length > 0 && host.length <= 253 && /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/.test(host)) || parseAddress(host) !== null;
}

/** `host:port`, an IPv6 address in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A Host header as the URL parser reads it (`[::ffff:10.0.0.1]` and `[::ffff:a00:1]` alike), without a trailing dot or the URL's default port; null-safe for junk. */
function hostHeader(value: string, port: string): string {
  try {
    const parsed = new URL(`http://${value}`);
    return `${parsed.hostname.replace(/\.$/, '')}:${parsed.port || port || '80'}`;
  } catch {
    return `invalid:${value}`;
  }
}

/** A refusal as the proxy answers a CONNECT: status, a one-line body, the reason in a header. */
function plainAnswer(status: number, body: string, reason?: string): string {
  const text = status === 403 ? 'Forbidden' : status === 400 ? 'Bad Request' : status === 503 ? 'Service Unavailable' : 'Bad Gateway';
  const denied = reason !== undefined ? `X-Oz-Denied: ${headerSafe(reason)}\r\n` : '';
  return `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n${denied}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A header value without control characters. */
function headerSafe(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200);
}
