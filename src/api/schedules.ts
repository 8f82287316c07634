import { z } from 'zod';
import { RUN_STATES } from '../core/run-state.js';
import { OVERLAP_POLICIES } from '../core/schedule.js';
import { creatorSchema, scopeSchema, successSchema, timestamp } from './common.js';
import { environmentConfigItemSchema } from './environments.js';
import { agentConfigSchema } from './run-requests.js';
import { templateAgentConfigSchema } from './runs.js';

const common = {
  name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
  cron_schedule: z.string().min(1, 'must not be empty').max(200),
  prompt: z.string().trim().min(1, 'must not be empty').max(100_000),
  agent_config: agentConfigSchema.optional(),
  /** Ours: an IANA time zone; UTC by default, as Oz. */
  timezone: z.string().min(1).max(100).optional(),
  /** Ours: what a slot does while the previous run still goes. */
  overlap_policy: z.enum(OVERLAP_POLICIES, { message: `must be one of ${OVERLAP_POLICIES.join(', ')}` }).optional(),
};

export const createScheduleSchema = z
  .object({
    ...common,
    prompt: common.prompt.optional(),
    enabled: z.boolean().optional(),
    team: z.boolean().optional(),
  })
  .strict();

/** PUT: a full replace of the spec's fields; our extensions keep their values when omitted. */
export const updateScheduleSchema = z
  .object({
    ...common,
    prompt: common.prompt.optional(),
    enabled: z.boolean({ message: 'is required (true or false)' }),
  })
  .strict();

export type CreateScheduleBody = z.infer<typeof createScheduleSchema>;
export type UpdateScheduleBody = z.infer<typeof updateScheduleSchema>;
export type CreateScheduleInput = z.input<typeof createScheduleSchema>;
export type UpdateScheduleInput = z.input<typeof updateScheduleSchema>;

/**
 * The spec's ScheduledAgentItem, plus ours: `timezone`, `overlap_policy`,
 * `cron_description` (plain English) and `last_run {run_id, state}`.
 */
export const scheduleItemSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    cron_schedule: z.string(),
    cron_description: z.string(),
    timezone: z.string(),
    overlap_policy: z.enum(OVERLAP_POLICIES),
    enabled: z.boolean(),
    prompt: z.string(),
    agent_config: templateAgentConfigSchema,
    environment: environmentConfigItemSchema.exactOptional().meta({ description: "the template's environment_id resolved (omitted when it names none, or one that is gone)" }),
    last_spawn_error: z.string().nullable(),
    created_at: timestamp,
    updated_at: timestamp,
    created_by: creatorSchema,
    updated_by: creatorSchema,
    history: z.object({ last_ran: timestamp.nullable(), next_run: timestamp.nullable() }),
    last_run: z.object({ run_id: z.string(), state: z.enum(RUN_STATES) }).nullable(),
    scope: scopeSchema,
  })
  .meta({ id: 'ScheduledAgentItem' });

export const listSchedulesResponseSchema = z.object({ schedules: z.array(scheduleItemSchema) }).meta({ id: 'ListScheduledAgentsResponse' });
export const deleteScheduleResponseSchema = successSchema.meta({ id: 'DeleteScheduledAgentResponse' });

export type ScheduleItem = z.infer<typeof scheduleItemSchema>;
export type ListSchedulesResponse = z.infer<typeof listSchedulesResponseSchema>;
