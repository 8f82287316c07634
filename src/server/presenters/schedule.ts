import type { ScheduleItem } from '../../api/schedules.js';
import { toRfc3339 } from '../../core/clock.js';
import type { Run } from '../../core/run.js';
import type { Environment } from '../../core/environment.js';
import type { Schedule } from '../../core/schedule.js';
import { presentEnvironmentConfig } from './environment.js';
import { describeCron } from '../cron.js';

/**
 * The spec's ScheduledAgentItem, plus ours: `timezone`, `overlap_policy`,
 * `cron_description` (plain English) and `last_run {run_id, state}`;
 * `environment` is the spec's resolved CloudEnvironmentConfig of the
 * template's `environment_id`, with our fields beside it as in CloudEnvironment.
 */
export function presentSchedule(schedule: Schedule, lastRun: Run | null, environment: Environment | null = null): ScheduleItem {
  return {
    id: schedule.id,
    name: schedule.name,
    cron_schedule: schedule.cron,
    cron_description: describeCron(schedule.cron),
    timezone: schedule.timezone,
    overlap_policy: schedule.overlapPolicy,
    enabled: schedule.enabled,
    prompt: schedule.prompt,
    // Stored as the request schema validated it (src/api/run-requests.ts); the store types it only as a JSON object.
    agent_config: schedule.agentConfig,
    ...(environment ? { environment: presentEnvironmentConfig(environment) } : {}),
    last_spawn_error: schedule.lastSpawnError,
    created_at: toRfc3339(schedule.createdAt),
    updated_at: toRfc3339(schedule.updatedAt),
    created_by: { type: 'user', uid: schedule.creatorId },
    updated_by: { type: 'user', uid: schedule.updatedBy },
    history: {
      last_ran: schedule.lastFiredAt !== null && schedule.lastRunId !== null ? toRfc3339(lastRun?.createdAt ?? schedule.lastFiredAt) : null,
      next_run: schedule.enabled && schedule.nextFireAt !== null ? toRfc3339(schedule.nextFireAt) : null,
    },
    last_run: lastRun ? { run_id: lastRun.id, state: lastRun.state } : null,
    scope: schedule.scope.type === 'team' ? { type: 'Team', uid: schedule.teamId } : { type: 'User', uid: schedule.scope.userId },
  };
}
