import { sameSecret } from '../core/same-secret.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { SUPPORT_ROUTES } from '../in-sandbox/harness-support-client.js';
import { SocketServer } from './socket-server.js';

const MAX_BODY = 64 * 1024;
/** A sandbox may hold this many connections to the socket at once. */
const MAX_CONNECTIONS = 16;
/** Per run: artifacts and notes beyond these are refused (429), so a loop cannot flood the run. */
const MAX_CALLS = {
  [SUPPORT_ROUTES.ping]: 10_000,
  [SUPPORT_ROUTES.artifact]: 100,
  [SUPPORT_ROUTES.notify]: 1000,
  [SUPPORT_ROUTES.finish]: 100,
  [SUPPORT_ROUTES.reference]: 100,
  [SUPPORT_ROUTES.shutdown]: 100,
} as const;

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2000);
/** A short machine-readable word: a reference type, an error category. */
const word = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be letters, digits, "_", "." or "-"');

const schemas = {
  [SUPPORT_ROUTES.ping]: z.strictObject({}),
  [SUPPORT_ROUTES.artifact]: z.strictObject({
    type: z.literal('pull-request'),
    url: httpUrl,
    branch: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[^\s~^:?*[\\]+$/, 'must be a branch name'),
  }),
  [SUPPORT_ROUTES.notify]: z.strictObject({ message: z.string().min(1).max(10_000) }),
  [SUPPORT_ROUTES.finish]: z.strictObject({ status: z.enum(['success', 'failure']), summary: z.string().min(1).max(20_000) }),
  [SUPPORT_ROUTES.reference]: z.strictObject({
    url: httpUrl,
    'reference-type': word,
    title: z.string().min(1).max(500).optional(),
    metadata: z
      .record(z.string().max(200), z.unknown())
      .refine((m) => JSON.stringify(m).length <= 8192, 'must be at most 8 KiB of JSON')
      .optional(),
  }),
  [SUPPORT_ROUTES.shutdown]: z.strictObject({ 'error-category': word.optional(), 'error-message': z.string().min(1).max(20_000).optional() }),
};

export type ReportedFinish = z.infer<(typeof schemas)['/v1/finish']>;

/** A link the agent reported to something outside the run (an issue, a build, a document). */
export interface ExternalReference {
  url: string;
  type: string;
  title?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

/** What `report-shutdown` said: an error (category and/or message) or a clean exit. */
export interface ReportedShutdown {
  errorCategory?: string | undefined;
  errorMessage?: string | undefined;
}

export interface SupportHandlers {
  pullRequest(url: string, branch: string): void;
  notify(message: string): void;
  finish(finish: ReportedFinish): void;
  reference(reference: ExternalReference): void;
  shutdown(shutdown: ReportedShutdown): void;
}

/**
 * The worker's end of `oz harness-support` for one run: HTTP on a unix
 * socket (bound into the run's sandbox, so it works with network off), every
 * request carrying the run's token, every body checked against its schema.
 */
export function startSupportServer(path: string, token: string, handlers: SupportHandlers): Promise<SocketServer> {
  const expected = Buffer.from(`Bearer ${token}`);
  const calls = new Map<string, number>();
  return SocketServer.start(path, MAX_CONNECTIONS, (req, res) => handle(req, res, expected, handlers, calls));
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse, expected: Buffer, handlers: SupportHandlers, calls: Map<string, number>): Promise<void> {
  const given = Buffer.from(req.headers.authorization ?? '');
  if (!sameSecret(given, expected)) return reply(res, 401, { error: 'not this run’s token' });
  const route = req.url as keyof typeof schemas;
  const schema = req.method === 'POST' ? schemas[route] : undefined;
  if (!schema) return reply(res, 404, { error: `no ${req.method} ${req.url}` });
  let text = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    text += chunk.toString();
    if (text.length > MAX_BODY) return reply(res, 413, { error: `the request is larger than ${MAX_BODY} bytes` });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return reply(res, 400, { error: 'the body is not JSON' });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    return reply(res, 400, { error: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ') });
  }
  const count = (calls.get(route) ?? 0) + 1;
  calls.set(route, count);
  if (count > MAX_CALLS[route]) return reply(res, 429, { error: `at most ${MAX_CALLS[route]} of these per run` });
  dispatch(route, parsed.data, handlers);
  reply(res, 200, { ok: true });
}

function dispatch(route: keyof typeof schemas, data: unknown, handlers: SupportHandlers): void {
  switch (route) {
    case SUPPORT_ROUTES.ping:
      return;
    case SUPPORT_ROUTES.artifact: {
      const body = data as z.infer<(typeof schemas)['/v1/artifacts']>;
      return handlers.pullRequest(body.url, body.branch);
    }
    case SUPPORT_ROUTES.notify:
      return handlers.notify((data as z.infer<(typeof schemas)['/v1/notify']>).message);
    case SUPPORT_ROUTES.finish:
      return handlers.finish(data as ReportedFinish);
    case SUPPORT_ROUTES.reference: {
      const body = data as z.infer<(typeof schemas)['/v1/references']>;
      return handlers.reference({ url: body.url, type: body['reference-type'], title: body.title, metadata: body.metadata });
    }
    case SUPPORT_ROUTES.shutdown: {
      const body = data as z.infer<(typeof schemas)['/v1/shutdown']>;
      return handlers.shutdown({ errorCategory: body['error-category'], errorMessage: body['error-message'] });
    }
  }
}
