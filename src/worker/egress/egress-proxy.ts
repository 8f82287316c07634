import { chmodSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { canonical, formatAddress, parseAddress, reasonFor } from '../../core/ip-address.js';
import { emptyCounts, MAX_AUDIT_HOSTS, type AuditHost, type NetworkAudit } from '../../core/network-audit.js';
import { ruleAllows, type DomainRule } from '../../core/network-policy.js';
import { systemLookup, type Lookup } from '../provisioning/remote-policy.js';
import { EgressRanges } from './egress-ranges.js';

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
  private readonly hosts = new Map<string, AuditHost>();
  private readonly other = emptyCounts();
  private readonly ranges: EgressRanges;
  private readonly lookup: Lookup;
  private readonly open = new Set<Duplex>();

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

  /** What went through so far (bounded). */
  audit(): NetworkAudit {
    return { policy: 'allowlist', hosts: [...this.hosts.values()].map((h) => ({ ...h })), other: { ...this.other } };
  }

  async close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.path) rmSync(this.path, { force: true });
  }

  /** The audit entry of host:port, or the overflow once the bound is reached. */
  private entry(host: string, port: number): AuditHost | typeof this.other {
    const key = `${host}:${port}`;
    let found = this.hosts.get(key);
    if (!found) {
      if (this.hosts.size >= MAX_AUDIT_HOSTS) return this.other;
      found = { host, port, ...emptyCounts() };
      this.hosts.set(key, found);
    }
    return found;
  }

  private async decide(rawHost: string, port: number): Promise<Decision> {
    const host = rawHost
      .replace(/^\[|\]$/g, '')
      .toLowerCase()
      .replace(/\.$/, '');
    const literal = parseAddress(host);
    if (literal) {
      // Rules name domains; an address is reachable only in a range the operator allowed.
      const bytes = canonical(literal);
      if (this.ranges.allows(bytes)) return { allowed: true, address: formatAddress(bytes) };
      return { allowed: false, status: 403, reason: 'not in the allowlist (an address: the allowlist names domains)', denial: true };
    }
    if (!this.options.rules.some((rule) => ruleAllows(rule, host, port))) return { allowed: false, status: 403, reason: 'not in the allowlist', denial: true };
    let found: string[];
    try {
      found = await this.lookup(host);
    } catch (error) {
      return { allowed: false, status: 502, reason: `${host} does not resolve (${(error as Error).message})`, denial: false };
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

  private refuse(host: string, port: number, decision: Extract<Decision, { allowed: false }>): string {
    const entry = this.entry(host, port);
    if (decision.denial) {
      entry.denied += 1;
      if ('host' in entry) entry.denied_reason = decision.reason;
      this.options.onDenied?.({ host, port, reason: decision.reason });
    }
    return `network denied: ${host}:${port} (${decision.reason})\n`;
  }

  private async tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = splitHostPort(req.url ?? '');
    if (!target) {
      client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nCONNECT needs host:port\n');
      return;
    }
    const decision = await this.decide(target.host, target.port);
    if (!decision.allowed) {
      const body = this.refuse(target.host, target.port, decision);
      client.end(
        `HTTP/1.1 ${decision.status} ${decision.status === 403 ? 'Forbidden' : 'Bad Gateway'}\r\nConnection: close\r\nContent-Type: text/plain\r\nX-Oz-Denied: ${headerSafe(decision.reason)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    const entry = this.entry(target.host.toLowerCase(), target.port);
    const upstream = netConnect({ host: decision.address, port: target.port });
    this.track(client, upstream);
    const timer = setTimeout(() => upstream.destroy(new Error('connect timed out')), this.options.connectTimeoutMs ?? 10_000);
    upstream.once('connect', () => {
      clearTimeout(timer);
      entry.connections += 1;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream).pipe(client);
    });
    upstream.once('error', (error) => {
      clearTimeout(timer);
      if (!client.writableEnded && upstream.bytesRead === 0 && upstream.bytesWritten === 0 && entry.connections === 0) {
        client.end(`HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${target.host}:${target.port}: ${error.message}\n`);
      } else client.destroy();
    });
    upstream.once('close', () => {
      clearTimeout(timer);
      entry.bytes_sent += upstream.bytesWritten;
      entry.bytes_received += upstream.bytesRead;
      client.destroy();
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
    const port = url.port ? Number(url.port) : 80;
    const host = url.hostname.toLowerCase();
    const decision = await this.decide(host, port);
    if (!decision.allowed) {
      const body = this.refuse(host.replace(/^\[|\]$/g, ''), port, decision);
      res.writeHead(decision.status, { 'content-type': 'text/plain', 'x-oz-denied': headerSafe(decision.reason), connection: 'close' }).end(body);
      return;
    }
    const entry = this.entry(host, port);
    const headers = { ...req.headers };
    for (const name of HOP_BY_HOP) delete headers[name];
    const upstream = httpRequest({
      host: decision.address,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      setHost: false,
      timeout: this.options.connectTimeoutMs ?? 10_000,
    });
    entry.connections += 1;
    upstream.on('socket', (socket: Socket) => {
      this.track(req.socket, socket);
      socket.once('close', () => {
        entry.bytes_sent += socket.bytesWritten;
        entry.bytes_received += socket.bytesRead;
      });
    });
    upstream.on('timeout', () => upstream.destroy(new Error('connect timed out')));
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
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
    }
  }
}

/** `host:port` or `[v6]:port` of a CONNECT line. */
function splitHostPort(text: string): { host: string; port: number } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!match) return null;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return null;
  return { host: (match[1] as string).replace(/^\[|\]$/g, '').toLowerCase(), port };
}

/** A header value without control characters. */
function headerSafe(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200);
}
