import { timingSafeEqual } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SocketServer } from './socket-server.js';

/** One model provider the proxy forwards to: where, and with which key. */
export interface Upstream {
  /** e.g. https://api.anthropic.com (the CLI's path, /v1/…, is appended). */
  base: string;
  key: string | undefined;
  /** How the provider takes its key. */
  header: 'x-api-key' | 'authorization';
}

export type Provider = 'anthropic' | 'openai';

const MAX_CONNECTIONS = 32;
/** A model request is buffered to be redacted; larger ones are refused. */
const MAX_REQUEST = 32 * 1024 * 1024;

/** Headers that belong to one hop (RFC 9110 §7.6.1), or carry the caller's key. */
const DROP = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'x-api-key', 'authorization']);

/**
 * The per-run model proxy of DESIGN.md "Sandboxes": agent CLIs in the
 * sandbox call it (through the in-sandbox bridge) with the run's token as
 * their "API key"; it checks the token, puts the real key in its place and
 * forwards to the provider, streaming both ways. The real key never enters
 * the sandbox. Request bodies pass the run's redactor first (what the
 * agent's commands printed goes to the provider without the run's secrets).
 * `/anthropic/…` and `/openai/…` pick the provider.
 */
export function startModelProxy(path: string, token: string, upstreams: Record<Provider, Upstream>, redact: (text: string) => string): Promise<SocketServer> {
  return SocketServer.start(path, MAX_CONNECTIONS, (req, res) => forward(req, res, token, upstreams, redact));
}

function fail(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'oz_model_proxy', message } }));
}

function tokenOf(req: IncomingMessage): string {
  const key = req.headers['x-api-key'];
  if (typeof key === 'string') return key;
  return /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function forward(req: IncomingMessage, res: ServerResponse, token: string, upstreams: Record<Provider, Upstream>, redact: (text: string) => string): Promise<void> {
  const match = /^\/(anthropic|openai)(\/.*)$/.exec(req.url ?? '');
  if (!match) return fail(res, 404, `no route ${req.url}: use /anthropic/… or /openai/…`);
  if (!same(tokenOf(req), token)) return fail(res, 401, 'not this run’s token');
  const provider = match[1] as Provider;
  const upstream = upstreams[provider];
  if (!upstream.key) return fail(res, 503, `no ${provider === 'anthropic' ? 'Anthropic' : 'OpenAI'} key for this run`);
  const target = new URL(upstream.base.replace(/\/+$/, '') + (match[2] as string));
  // The body carries what the agent's commands printed: the run's secrets are redacted before it leaves.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if ((size += chunk.length) > MAX_REQUEST) return fail(res, 413, `a model request larger than ${MAX_REQUEST} bytes`);
    chunks.push(chunk);
  }
  const body = Buffer.from(redact(Buffer.concat(chunks).toString('utf8')));
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !DROP.has(name) && name !== 'content-length') headers[name] = value;
  headers['content-length'] = String(body.length);
  if (upstream.header === 'x-api-key') headers['x-api-key'] = upstream.key;
  else headers.authorization = `Bearer ${upstream.key}`;
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const out = send(target, { method: req.method, headers }, (answer) => {
    const back: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !DROP.has(name)) back[name] = value;
    res.writeHead(answer.statusCode ?? 502, back);
    answer.pipe(res);
  });
  out.on('error', (error) => (res.headersSent ? res.destroy() : fail(res, 502, `the ${provider} API could not be reached: ${error.message}`)));
  // The CLI went away: stop the upstream call too.
  res.on('close', () => out.destroy());
  out.end(body);
}
