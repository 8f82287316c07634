import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { toRfc3339 } from '../../core/clock.js';
import { notFound, OzError } from '../../core/errors.js';
import { isTerminal } from '../../core/run-state.js';
import type { RunEvent } from '../../core/run-event.js';
import { principalOf } from '../auth.js';
import type { ServerDeps } from '../deps.js';
import { idParam } from '../schemas/common.js';

const PAGE = 500;
const HEARTBEAT_MS = 15_000;

export function sseFrame(event: RunEvent): string {
  const payload = { seq: event.seq, type: event.type, at: toRfc3339(event.at), data: event.data };
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(payload)}\n\n`;
}

function resumeFrom(header: string | string[] | undefined, query: number | undefined): number {
  const raw = Array.isArray(header) ? header[0] : header;
  if (raw === undefined) return query ?? 0;
  if (!/^\d{1,15}$/.test(raw.trim())) {
    throw new OzError('invalid_request', 'Last-Event-ID: must be the sequence number of an event', { reason: 'Last-Event-ID' });
  }
  return Number(raw.trim());
}

/**
 * `GET /agent/runs/{id}/events`: the run's events as server-sent events, each
 * with `id: <seq>`, so a client that reconnects with `Last-Event-ID` gets
 * exactly the events after the last one it saw — none lost, none repeated.
 * The store is read in order; between reads the stream sleeps until the event
 * hub wakes it (or a short poll interval passes). The stream ends with an
 * `end` event once the run is terminal and every event has been sent.
 */
export function runEventRoutes(deps: ServerDeps, streams: Set<AbortController>) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/agent/runs/:runId/events',
      {
        schema: {
          params: z.object({ runId: idParam }),
          querystring: z.object({ after: z.coerce.number().int().min(0).optional() }).strict(),
          summary: "Stream a run's events (SSE; resumable with Last-Event-ID)",
          tags: ['runs'],
        },
      },
      async (request, reply) => {
        const teamId = principalOf(request).team.id;
        const runId = request.params.runId;
        if (!(await deps.store.getRun(teamId, runId))) throw notFound('run', runId);
        let after = resumeFrom(request.headers['last-event-id'], request.query.after);

        const abort = new AbortController();
        streams.add(abort);
        reply.hijack();
        const res = reply.raw;
        // The response's 'close' is the client going away (or the stream ending).
        res.on('close', () => abort.abort());
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write('retry: 1000\n\n');
        let lastWrite = Date.now();
        try {
          while (!abort.signal.aborted) {
            // Read the state first: if it is terminal, its state event is already stored.
            const run = await deps.store.getRunById(runId);
            const events = await deps.store.listRunEvents(runId, after, PAGE);
            for (const event of events) {
              res.write(sseFrame(event));
              after = event.seq;
              lastWrite = Date.now();
            }
            if (events.length === PAGE) continue;
            if (!run || isTerminal(run.state)) {
              res.write(`event: end\ndata: ${JSON.stringify({ state: run?.state ?? null, last_seq: after })}\n\n`);
              break;
            }
            if (Date.now() - lastWrite >= HEARTBEAT_MS) {
              res.write(': keep-alive\n\n');
              lastWrite = Date.now();
            }
            await deps.hub.wait(runId, deps.eventPollMs ?? 1000, abort.signal);
          }
        } catch (error) {
          request.log.error({ err: error, runId }, 'event stream failed');
        } finally {
          streams.delete(abort);
          res.end();
        }
      },
    );
  };
}
