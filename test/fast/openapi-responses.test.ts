import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_EVENTS_MEDIA_TYPE } from '../../src/api/run-events.js';
import { UNIMPLEMENTED_PATHS } from '../../src/server/routes/unimplemented.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';

const API = '/api/v1';
const DOCUMENT = `${API}/openapi.json`;

interface Operation {
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Record<string, unknown> }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

/** `/agent/runs/:runId` and `/agent/runs/{runId}` alike: `/agent/runs/{}` (fastify may print several names for one parameter node). */
const normalize = (path: string): string => path.replace(/\{[^}]+\}/g, '{}').replace(/:[A-Za-z_]\w*(?:\|:[A-Za-z_]\w*)*/g, '{}');

/**
 * Every route fastify serves, as `METHOD /path`, read from `printRoutes`
 * (fastify lists routes nowhere else once they are registered): each line is
 * a node of the radix tree, four characters of indentation per level, its
 * methods in parentheses.
 */
function servedRoutes(tree: string): string[] {
  const prefixes: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    const path = `${prefixes[depth - 1] ?? ''}${m[2] ?? ''}`;
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD')) routes.push(`${method} ${normalize(path)}`);
  }
  return routes;
}

/** What a 2xx answer documents: its status and media types, each with a schema. */
function successes(operation: Operation): { status: string; media: string[] }[] {
  return Object.entries(operation.responses ?? {})
    .filter(([status]) => /^2\d\d$/.test(status))
    .map(([status, response]) => ({
      status,
      media: Object.entries(response.content ?? {})
        .filter(([, media]) => media.schema !== undefined && Object.keys(media.schema).length > 0)
        .map(([type]) => type),
    }));
}

describe('the served OpenAPI document', () => {
  let server: InProcessApp;
  let doc: Document;
  /** `METHOD /path` of every documented operation under the API. */
  let documented: string[];
  const unimplemented = new Set(UNIMPLEMENTED_PATHS.map(([method, url]) => `${method} ${normalize(`${API}${url}`)}`));

  beforeAll(async () => {
    server = await startInProcessApp();
    const res = await fetch(`${server.url}${DOCUMENT}`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as Document;
    documented = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith(`${API}/`))
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${normalize(path)}`));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('documents every route the API serves (only the document itself is left out)', () => {
    const served = servedRoutes(server.app.printRoutes({ commonPrefix: false })).filter((route) => route.split(' ')[1]?.startsWith(`${API}/`));
    // The parse found the API: a format change of printRoutes must not make this test pass vacuously.
    expect(served).toEqual(expect.arrayContaining(['GET /api/v1/agent/runs', 'POST /api/v1/agent/runs', 'GET /api/v1/agent/runs/{}/events', 'POST /api/v1/worker/claim']));
    const undocumented = served.filter((route) => route !== `GET ${DOCUMENT}` && !documented.includes(route));
    expect(undocumented).toEqual([]);
  });

  it('gives every operation under /api/v1 a 2xx answer with a schema: JSON, or the event stream', () => {
    const missing: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      if (!path.startsWith(`${API}/`)) continue;
      for (const [method, operation] of Object.entries(operations)) {
        const route = `${method.toUpperCase()} ${normalize(path)}`;
        // Spec paths we do not serve yet answer feature_not_available only; they have no success to describe.
        if (unimplemented.has(route)) continue;
        const answers = successes(operation);
        const described = answers.some(({ status, media }) => status === '204' || media.includes('application/json') || media.includes(RUN_EVENTS_MEDIA_TYPE));
        if (!described) missing.push(`${route}: ${JSON.stringify(operation.responses ?? {})}`);
      }
    }
    expect(missing).toEqual([]);
    expect(documented.length - unimplemented.size).toBeGreaterThan(40);
  });

  it('documents the spec paths we do not serve yet with their problem+json answer and no success', () => {
    expect([...unimplemented].filter((route) => !documented.includes(route))).toEqual([]);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!unimplemented.has(`${method.toUpperCase()} ${normalize(path)}`)) continue;
        expect(successes(operation), `${method} ${path}`).toEqual([]);
        expect(Object.keys(operation.responses?.default?.content ?? {})).toEqual(['application/problem+json']);
      }
    }
  });

  it('resolves every $ref to one of its components (RunItem, CloudEnvironment, Problem, …)', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(refs.length).toBeGreaterThan(0);
    const components = Object.keys(doc.components?.schemas ?? {});
    expect(components).toEqual(expect.arrayContaining(['RunItem', 'ListRunsResponse', 'CloudEnvironment', 'ScheduledAgentItem', 'ConversationResponse', 'Problem']));
    expect([...new Set(refs)].filter((ref) => !components.includes(ref.replace('#/components/schemas/', '')))).toEqual([]);
  });
});
