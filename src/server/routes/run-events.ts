import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idParam } from '../../api/common.js';
import { RUN_EVENTS_MEDIA_TYPE, type RunEventMessage, type RunEventsEnd } from '../../api/run-events.js';
import { toRfc3339 } from '../../core/clock.js';
import { notFound, OzError } from '../../core/errors.js';
import { DEFAULT_EVENT_STREAMS } from '../../core/config.js';
import { isTerminal, LEASED_STATES } from '../../core/run-state.js';
import type { RunEvent } from '../../core/run-event.js';
import { principalOf } from '../auth.js';
import { hashSecret } from '../credentials.js';
import type { ServerDeps } from '../deps.js';
import { SseWriter, StreamSlots } from '../event-stream.js';
import { settingDefault } from '../../core/config.js';

/**
 * Events read per store query: a stream starts small and doubles while the
 * client keeps up, and drops back after a write hit backpressure, so a slow
 * reader never has more than a few events of its run in memory.
 */
const FIRST_PAGE = 16;
const MIN_PAGE = 8;
const MAX_PAGE = 500;

export function sseFrame(event: RunEvent): string {
  const payload: RunEventMessage = { seq: event.seq, type: event.type, at: toRfc3339(event.at), data: event.data };
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

/** Bearer secret of the request (already validated by `authenticate`). */
function bearerSecret(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

/**
 * `GET /agent/runs/{id}/events`: the run's events as server-sent events, each
 * with `id: <seq>`, so a client that reconnects with `Last-Event-ID` gets
 * exactly the events after the last one it saw — none lost, none repeated.
 * The store is read in order; between reads the stream sleeps until the event
 * hub wakes it (or a short poll interval passes). The stream ends with an
 * `end` event once the run is terminal and every event has been sent.
 *
 * Guards (docs/api.md "Event streams"): a stream reads no further from the
 * store while its socket is over the high-water mark, and a client that stays
 * unwritable for `unwritableTimeoutMs` is disconnected; streams are capped per
 * API key and per team (429); a stream that sent no event for `idleTimeoutMs`
 * while no worker holds the run is ended (a run being executed never idles
 * out); the API key is re-checked every heartbeat and the stream ends once it
 * no longer authenticates. Every early end is a clean close without `end`, so
 * clients resume with Last-Event-ID (and learn of a dead key from the 401).
 */
export function runEventRoutes(deps: ServerDeps, streams: Set<AbortController>) {
  const settings = deps.eventStreams ?? DEFAULT_EVENT_STREAMS;
  const slots = new StreamSlots(settings);
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/agent/runs/:runId/events',
      {
        schema: {
          params: z.object({ runId: idParam }),
          querystring: z.object({ after: z.coerce.number().int().min(0).optional() }).strict(),
          // Documentation only: the handler writes the stream itself, so nothing is serialized through it.
          response: {
            200: {
              description: 'server-sent events: `id: <seq>`, `event: <type>`, `data: {seq, type, at, data}`; last `event: end` with `{state, last_seq}` (src/api/run-events.ts)',
              content: { [RUN_EVENTS_MEDIA_TYPE]: { schema: z.string() } },
            },
          },
          summary: "Stream a run's events (SSE; resumable with Last-Event-ID)",
          tags: ['runs'],
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const teamId = principal.team.id;
        const runId = request.params.runId;
        if (!(await deps.store.getRun(teamId, runId))) throw notFound('run', runId);
        let after = resumeFrom(request.headers['last-event-id'], request.query.after);
        const secret = bearerSecret(request.headers.authorization);
        // A dashboard session's stream (the cookie) is re-checked as its session: it ends with the session or its key.
        const session = request.webSession;
        const keyStillValid = async (): Promise<boolean> => {
          if (session) return (await deps.store.webSessions.find(session.secretHash, deps.clock.now()))?.key.id === principal.key.id;
          const found = secret ? await deps.store.findApiKeyByHash(hashSecret(secret), deps.clock.now()) : null;
          return found?.key.id === principal.key.id;
        };
        const release = slots.acquire(principal.key.id, teamId);

        const abort = new AbortController();
        streams.add(abort);
        reply.hijack();
        const res = reply.raw;
        // The response's 'close' is the client going away (or the stream ending).
        res.on('close', () => abort.abort());
        if (res.destroyed) abort.abort();
        const writer = new SseWriter(res, settings.unwritableTimeoutMs, abort.signal);
        const pollMs = deps.eventPollMs ?? settingDefault('eventPollMs');
        let page = FIRST_PAGE;
        let lastWrite = Date.now();
        // Since when nothing happened: no event sent and no worker holding the run.
        let activeAt = lastWrite;
        let keyCheckedAt = lastWrite;
        try {
          res.writeHead(200, {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-cache, no-transform',
            connection: 'keep-alive',
            'x-accel-buffering': 'no',
          });
          writer.write('retry: 1000\n\n');
          while (!abort.signal.aborted) {
            if (Date.now() - keyCheckedAt >= settings.heartbeatMs) {
              keyCheckedAt = Date.now();
              if (!(await keyStillValid())) {
                writer.write(': the API key is no longer valid\n\n');
                break;
              }
            }
            // Read the state first: if it is terminal, its state event is already stored.
            const run = await deps.store.getRunById(runId);
            const limit = page;
            const events = await deps.store.listRunEvents(runId, after, limit);
            let blocked = false;
            for (const event of events) {
              after = event.seq;
              lastWrite = activeAt = Date.now();
              if (!writer.write(sseFrame(event))) {
                blocked = true;
                break;
              }
            }
            if (blocked) {
              // Drop the rest of the page: it is read again, from `after`, once the client caught up.
              page = MIN_PAGE;
              if (!(await writer.drained())) break;
              continue;
            }
            if (events.length === limit) {
              page = Math.min(page * 2, MAX_PAGE);
              continue;
            }
            if (!run || isTerminal(run.state)) {
              const end: RunEventsEnd = { state: run?.state ?? null, last_seq: after };
              writer.write(`event: end\ndata: ${JSON.stringify(end)}\n\n`);
              break;
            }
            const now = Date.now();
            if (LEASED_STATES.includes(run.state)) activeAt = now;
            if (now - activeAt >= settings.idleTimeoutMs) {
              writer.write(': idle timeout: no event for a while and no worker on the run; reconnect with Last-Event-ID\n\n');
              break;
            }
            if (now - lastWrite >= settings.heartbeatMs) {
              lastWrite = now;
              if (!writer.write(': keep-alive\n\n') && !(await writer.drained())) break;
            }
            const untilDue = Math.min(settings.heartbeatMs - (now - lastWrite), settings.heartbeatMs - (now - keyCheckedAt), settings.idleTimeoutMs - (now - activeAt));
            await deps.hub.wait(runId, Math.max(10, Math.min(pollMs, untilDue)), abort.signal);
          }
        } catch (error) {
          request.log.error({ err: error, runId }, 'event stream failed');
        } finally {
          streams.delete(abort);
          release();
          if (writer.stalled) request.log.warn({ runId, unwritableMs: settings.unwritableTimeoutMs }, 'event stream client read nothing for the unwritable timeout; disconnected');
          writer.close();
        }
      },
    );
  };
}
