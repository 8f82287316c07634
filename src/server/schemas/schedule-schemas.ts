import { z } from 'zod';
import { OVERLAP_POLICIES } from '../../core/schedule.js';
import { agentConfigSchema } from './run-schemas.js';

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
