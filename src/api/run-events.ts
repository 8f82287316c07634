import { z } from 'zod';
import { RUN_EVENT_TYPES } from '../core/run-event.js';
import { RUN_STATES } from '../core/run-state.js';
import { timestamp } from './common.js';

/**
 * `GET /agent/runs/{id}/events` is a stream of server-sent events, not one
 * JSON body: each frame is `id: <seq>`, `event: <type>` and `data:` one of
 * these as JSON (docs/api.md "Event streams").
 */
export const RUN_EVENTS_MEDIA_TYPE = 'text/event-stream';

/** The `data` of an event frame: the stored event; its `data` is open (each type has its own fields, src/core/run-event.ts). */
export const runEventMessageSchema = z.object({
  seq: z.number().int(),
  type: z.enum(RUN_EVENT_TYPES),
  at: timestamp,
  data: z.record(z.string(), z.unknown()),
});

/** The `data` of the last frame, `event: end`, once the run is terminal and every event was sent. */
export const runEventsEndSchema = z.object({ state: z.enum(RUN_STATES).nullable(), last_seq: z.number().int() });

export type RunEventMessage = z.infer<typeof runEventMessageSchema>;
export type RunEventsEnd = z.infer<typeof runEventsEndSchema>;
