import { sameSecret } from '../core/same-secret.js';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { SocketServer } from './socket-server.js';

/** One model provider the proxy forwards to: where, and with which key. */
export interface Upstream {
  /** e.g. https://api.anthropic.com (the CLI's path, /v1/…, is appended). */
  base: string;
  key: string | undefined;
  /** How the provider takes its key. */
  header: 'x-api-key' | 'authorization';
  /**
   * Connect only to these addresses (checked against the destination policy
   * when the run started), whatever the name resolves to later: a base URL a
   * user gave (a harness key's) must not be turned into a LAN address by DNS.
   */
  pinned?: readonly string[] | undefined;
}

export type Provider = 'anthropic' | 'openai';

/** What one model call may cost the worker. */
export interface ModelProxyLimits {
  /** A request body is buffered to be redacted: larger ones are refused (413). */
  maxRequestBytes: number;
  /** The whole request body must arrive within this (408). */
  requestBodyMs: number;
  /** The provider must start answering within this (504): a non-streaming call answers only when done. */
  firstByteMs: number;
  /** Once answering, the provider may go this long without sending a byte (the call is cut). */
  idleMs: number;
  /** One call, from its request to the end of its answer, at most (the call is cut). */
  totalMs: number;
}

export const MODEL_PROXY_LIMITS: ModelProxyLimits = Object.freeze({
  maxRequestBytes: 32 * 1024 * 1024,
  requestBodyMs: 60_000,
  // The providers' own SDKs wait 10 minutes for a call; Codex cuts a stream silent for 5.
  firstByteMs: 10 * 60_000,
  idleMs: 5 * 60_000,
  totalMs: 60 * 60_000,
});

const MAX_CONNECTIONS = 32;

/**
 * The provider API paths the proxy forwards, per provider and method: what
 * Claude Code (Anthropic Messages) and Codex (OpenAI Responses, or Chat
 * Completions with `wire_api = "chat"`) call. Anything else — another API of
 * the provider, `..`, percent-encoded paths — is refused and never reaches it.
 */
const MODEL_ID = '[A-Za-z0-9][A-Za-z0-9._:@-]*';
const ROUTES: Record<Provider, readonly { method: string; path: RegExp }[]> = {
  anthropic: [
    { method: 'POST', path: /^\/v1\/messages$/ },
    { method: 'POST', path: /^\/v1\/messages\/count_tokens$/ },
    { method: 'GET', path: /^\/v1\/models$/ },
    { method: 'GET', path: new RegExp(`^/v1/models/${MODEL_ID}$`) },
  ],
  openai: [
    { method: 'POST', path: /^\/v1\/responses$/ },
    { method: 'POST', path: /^\/v1\/responses\/compact$/ },
    { method: 'POST', path: /^\/v1\/chat\/completions$/ },
    { method: 'GET', path: /^\/v1\/models$/ },
    { method: 'GET', path: new RegExp(`^/v1/models/${MODEL_ID}$`) },
  ],
};
/** A query string of plain URL characters (Claude Code sends `?beta=true`). */
const QUERY = /^[A-Za-z0-9._~%=&+,-]*$/;

/**
 * Headers that belong to one hop (RFC 9110 §7.6.1), carry the caller's key,
 * or would tell the provider a host or client other than the real one.
 */
const DROP = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'x-api-key',
  'authorization',
  'proxy-authorization',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);

/**
 * The per-run model proxy of docs/design.md "Sandboxes": agent CLIs in the
 * sandbox call it (through the in-sandbox bridge) with the run's token as
 * their "API key"; it checks the token, puts the real key in its place and
 * forwards to the provider, streaming the answer back. The real key never
 * enters the sandbox. Request bodies pass the run's redactor first (what the
 * agent's commands printed goes to the provider without the run's secrets).
 * `/anthropic/…` and `/openai/…` pick the provider; only the provider's model
 * API paths are forwarded, within {@link ModelProxyLimits}.
 */
export function startModelProxy(
  path: string,
  token: string,
  upstreams: Record<Provider, Upstream>,
  redact: (text: string) => string,
  limits: Partial<ModelProxyLimits> = {},
): Promise<SocketServer> {
  const bounds = { ...MODEL_PROXY_LIMITS, ...limits };
  return SocketServer.start(path, MAX_CONNECTIONS, (req, res) => forward(req, res, token, upstreams, redact, bounds));
}

/** Answer with an error: once per request (a later failure of the same call changes nothing), or cut a started answer. */
function fail(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ type: 'error', error: { type: 'oz_model_proxy', message } }));
}

function tokenOf(req: IncomingMessage): string {
  const key = req.headers['x-api-key'];
  if (typeof key === 'string') return key;
  return /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
}

type Route = { provider: Provider; path: string; query: string } | { status: number; message: string };

/** Which provider and API path a request target names, or why it is refused. */
export function routeOf(method: string, target: string): Route {
  if (!target.startsWith('/')) return { status: 400, message: 'only origin-form request targets (/anthropic/… or /openai/…) are accepted' };
  const q = target.indexOf('?');
  const pathPart = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  const match = /^\/(anthropic|openai)(\/.*)$/.exec(pathPart);
  if (!match) return { status: 404, message: `no route ${pathPart}: use /anthropic/… or /openai/…` };
  const provider = match[1] as Provider;
  const path = match[2] as string;
  const routes = ROUTES[provider].filter((r) => r.path.test(path));
  if (routes.length === 0) return { status: 404, message: `${path} is not a model API path this proxy forwards to ${provider}` };
  if (!routes.some((r) => r.method === method)) return { status: 405, message: `${method} ${path} is not forwarded (only ${routes.map((r) => r.method).join(', ')})` };
  if (!QUERY.test(query)) return { status: 400, message: 'the query string has characters the proxy does not forward' };
  return { provider, path, query };
}

/** A `lookup` for node:http that answers with the checked addresses only (the first, or all when asked). */
function pinnedLookup(addresses: readonly string[]): LookupFunction {
  const entries = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  return (_host, options, callback) => {
    const first = entries[0] as { address: string; family: number };
    if (options.all) callback(null, entries);
    else callback(null, first.address, first.family);
  };
}

/** The upstream URL: the base's origin and path, then exactly the route's path (checked, not trusted to URL parsing). */
function targetUrl(base: string, path: string, query: string): URL | null {
  const root = new URL(base);
  const prefix = root.pathname.replace(/\/+$/, '');
  const url = new URL(root.origin);
  url.pathname = prefix + path;
  url.search = query;
  return url.origin === root.origin && url.pathname === prefix + path ? url : null;
}

/** The request body, whole, within the size and time limits; null once refused (the answer is sent). */
async function readBody(req: IncomingMessage, res: ServerResponse, limits: ModelProxyLimits): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? 0);
  // Refused unread; the connection closes after the answer, so the rest is never read.
  const tooLarge = (): null => (fail(res, 413, `a model request larger than ${limits.maxRequestBytes} bytes`, { connection: 'close' }), null);
  if (declared > limits.maxRequestBytes) return tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), limits.requestBodyMs)));
  const iterator = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), timedOut]);
      if (next === 'timeout') {
        fail(res, 408, `the request body did not arrive within ${limits.requestBodyMs} ms`, { connection: 'close' });
        return null;
      }
      if (next.done) return Buffer.concat(chunks);
      if ((size += next.value.length) > limits.maxRequestBytes) return tooLarge();
      chunks.push(next.value);
    }
  } finally {
    clearTimeout(timer);
  }
}

async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  token: string,
  upstreams: Record<Provider, Upstream>,
  redact: (text: string) => string,
  limits: ModelProxyLimits,
): Promise<void> {
  const method = req.method ?? '';
  const route = routeOf(method, req.url ?? '');
  if ('status' in route) return fail(res, route.status, route.message);
  if (!sameSecret(tokenOf(req), token)) return fail(res, 401, 'not this run’s token');
  const upstream = upstreams[route.provider];
  if (!upstream.key) return fail(res, 503, `no ${route.provider === 'anthropic' ? 'Anthropic' : 'OpenAI'} key for this run`);
  const target = targetUrl(upstream.base, route.path, route.query);
  if (!target) return fail(res, 400, `${route.path} does not stay below the provider's base URL`);
  const raw = await readBody(req, res, limits);
  if (raw === null) return;
  // The body carries what the agent's commands printed: the run's secrets are redacted before it leaves.
  const body = Buffer.from(redact(raw.toString('utf8')));
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !DROP.has(name) && name !== 'content-length') headers[name] = value;
  headers['content-length'] = String(body.length);
  if (upstream.header === 'x-api-key') headers['x-api-key'] = upstream.key;
  else headers.authorization = `Bearer ${upstream.key}`;

  const started = Date.now();
  let out: ClientRequest | null = null;
  let timer: NodeJS.Timeout | undefined;
  /** Cut the call: a clear 504 before the answer started, else the connection (the CLI sees a broken stream and retries). */
  const cut = (why: string): void => {
    out?.destroy();
    fail(res, 504, why);
  };
  const arm = (ms: number, why: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => cut(why), Math.max(0, Math.min(ms, limits.totalMs - (Date.now() - started))));
  };
  arm(limits.firstByteMs, `the ${route.provider} API did not answer within ${limits.firstByteMs} ms (or the call's ${limits.totalMs} ms)`);
  res.on('close', () => {
    clearTimeout(timer);
    // The CLI went away: stop the upstream call too.
    out?.destroy();
  });
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  out = send(target, { method, headers, ...(upstream.pinned?.length ? { lookup: pinnedLookup(upstream.pinned) } : {}) }, (answer) => {
    const back: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !DROP.has(name)) back[name] = value;
    res.writeHead(answer.statusCode ?? 502, back);
    const idle = `the ${route.provider} API sent nothing for ${limits.idleMs} ms (or the call took over ${limits.totalMs} ms)`;
    arm(limits.idleMs, idle);
    answer.on('data', () => arm(limits.idleMs, idle));
    answer.on('end', () => clearTimeout(timer));
    // A provider that breaks off mid-answer: the CLI sees the same.
    answer.on('aborted', () => res.destroy());
    answer.on('error', () => res.destroy());
    answer.pipe(res);
  });
  out.on('error', (error) => fail(res, 502, `the ${route.provider} API could not be reached: ${error.message}`));
  out.end(body);
}
