import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idParam } from '../../api/common.js';
import type { RunAgentRequest } from '../../api/run-requests.js';
import { runAgentResponseSchema } from '../../api/runs.js';
import {
  createScheduleSchema,
  deleteScheduleResponseSchema,
  listSchedulesResponseSchema,
  scheduleItemSchema,
  updateScheduleSchema,
  type ScheduleItem,
} from '../../api/schedules.js';
import { notFound, OzError } from '../../core/errors.js';
import type { Team } from '../../core/identity.js';
import type { Schedule } from '../../core/schedule.js';
import { refuseAboveMaxima, teamLimits } from '../limits.js';
import { principalOf } from '../auth.js';
import { checkCron, checkTimezone, nextSlot } from '../cron.js';
import type { ServerDeps } from '../deps.js';
import { presentSchedule } from '../presenters/schedule.js';
import type { Scheduler } from '../scheduler.js';
import { rejectUnimplemented } from '../run-service.js';
import { modelCatalogOf } from '../model-choice.js';

/** A schedule's template: a prompt, and no spec field we do not implement (named, never ignored). */
function checkTemplate(body: { prompt?: string | undefined; agent_config?: RunAgentRequest['config'] | undefined }): string {
  try {
    rejectUnimplemented({ prompt: body.prompt ?? '', ...(body.agent_config ? { config: body.agent_config } : {}) });
  } catch (error) {
    if (error instanceof OzError && error.reason?.startsWith('config.')) {
      const field = `agent_config.${error.reason.slice('config.'.length)}`;
      throw new OzError(error.code, `${field} is not available on this server yet`, { reason: field });
    }
    throw error;
  }
  if (!body.prompt) throw new OzError('invalid_request', 'prompt: is required', { reason: 'prompt' });
  return body.prompt;
}

/**
 * The spec's `/agent/schedules` (create, list, get, PUT, delete, pause,
 * resume) and our run-now. Timing is validated by computing the next slot.
 */
export function scheduleRoutes(deps: ServerDeps, scheduler: Scheduler) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const params = z.object({ scheduleId: idParam });
    const present = async (schedule: Schedule, viewerId: string): Promise<ScheduleItem> => {
      const lastRun = schedule.lastRunId ? await deps.store.getRun(schedule.teamId, schedule.lastRunId) : null;
      // The spec's resolved `environment`: the one the template names, as the caller may see it — a
      // teammate reading a team schedule that names its creator's personal environment gets none of
      // it (a deleted one is omitted too).
      const environmentId = typeof schedule.agentConfig.environment_id === 'string' ? schedule.agentConfig.environment_id : null;
      const environment = environmentId ? await deps.store.getEnvironment(schedule.teamId, environmentId, viewerId) : null;
      return presentSchedule(schedule, lastRun, environment);
    };
    const timing = (cron: string, timezone: string, enabled: boolean): number | null => {
      const next = nextSlot(cron, timezone, deps.clock.now());
      if (next === null) throw new OzError('invalid_request', `cron_schedule: "${cron}" never fires again`, { reason: 'cron_schedule' });
      return enabled ? next : null;
    };
    /**
     * What a template names must be the caller's to use: the environment
     * visible to them (team-wide or their own personal one), and a runtime
     * under the team's ceiling. The scheduler checks again at each spawn.
     */
    const checkReferences = async (team: Team, userId: string, config: RunAgentRequest['config']): Promise<void> => {
      // The same catalog as a run's; the scheduler resolves again at each spawn (the catalog may have changed).
      if (config?.model_id !== undefined) modelCatalogOf(deps).resolve(config.model_id, 'agent_config.model_id');
      if (config?.max_runtime_seconds !== undefined) refuseAboveMaxima({ maxRuntimeMs: config.max_runtime_seconds * 1000 }, teamLimits(deps, team).maxima, 'agent_config.');
      if (config?.environment_id && !(await deps.store.getEnvironment(team.id, config.environment_id, userId))) {
        throw new OzError('resource_not_found', `agent_config.environment_id: environment ${config.environment_id} not found`, { reason: 'agent_config.environment_id' });
      }
    };
    const find = async (request: { params: { scheduleId: string } } & Parameters<typeof principalOf>[0]): Promise<Schedule> => {
      const { team, user } = principalOf(request);
      const schedule = await deps.store.schedules.get(team.id, request.params.scheduleId, user.id);
      if (!schedule) throw notFound('schedule', request.params.scheduleId);
      return schedule;
    };

    r.post(
      '/agent/schedules',
      { schema: { body: createScheduleSchema, response: { 201: scheduleItemSchema }, summary: 'Create a scheduled agent', tags: ['schedules'] } },
      async (request, reply) => {
        const { team, user } = principalOf(request);
        const body = request.body;
        const prompt = checkTemplate(body);
        const cron = checkCron(body.cron_schedule);
        const timezone = checkTimezone(body.timezone ?? 'UTC');
        const enabled = body.enabled ?? true;
        await checkReferences(team, user.id, body.agent_config);
        const schedule = await deps.store.schedules.create(
          {
            teamId: team.id,
            scope: body.team === false ? { type: 'user', userId: user.id } : { type: 'team' },
            creatorId: user.id,
            name: body.name,
            cron,
            timezone,
            overlapPolicy: body.overlap_policy ?? 'allow',
            enabled,
            prompt,
            agentConfig: body.agent_config ?? {},
            nextFireAt: timing(cron, timezone, enabled),
          },
          deps.clock.now(),
        );
        return reply.status(201).send(await present(schedule, user.id));
      },
    );

    r.get('/agent/schedules', { schema: { response: { 200: listSchedulesResponseSchema }, summary: 'List scheduled agents (by name)', tags: ['schedules'] } }, async (request) => {
      const { team, user } = principalOf(request);
      const schedules = await deps.store.schedules.list(team.id, user.id);
      return { schedules: await Promise.all(schedules.map((schedule) => present(schedule, principalOf(request).user.id))) };
    });

    r.get('/agent/schedules/:scheduleId', { schema: { params, response: { 200: scheduleItemSchema }, summary: 'Get a scheduled agent', tags: ['schedules'] } }, async (request) =>
      present(await find(request), principalOf(request).user.id),
    );

    r.put(
      '/agent/schedules/:scheduleId',
      { schema: { params, body: updateScheduleSchema, response: { 200: scheduleItemSchema }, summary: 'Replace a scheduled agent', tags: ['schedules'] } },
      async (request) => {
        const current = await find(request);
        const { team, user } = principalOf(request);
        const body = request.body;
        const prompt = checkTemplate(body);
        // The new template is the editor's: its references are checked for them, and it runs as them.
        await checkReferences(team, user.id, body.agent_config);
        const cron = checkCron(body.cron_schedule);
        const timezone = checkTimezone(body.timezone ?? current.timezone);
        const sameTiming = cron === current.cron && timezone === current.timezone && current.enabled && body.enabled;
        const updated = await deps.store.schedules.update(
          current.teamId,
          current.id,
          {
            ...(user.id !== current.creatorId ? { creatorId: user.id } : {}),
            updatedBy: user.id,
            name: body.name,
            cron,
            timezone,
            overlapPolicy: body.overlap_policy ?? current.overlapPolicy,
            enabled: body.enabled,
            prompt,
            agentConfig: body.agent_config ?? {},
            // Unchanged timing keeps its next slot; otherwise the next one from now.
            nextFireAt: sameTiming ? current.nextFireAt : timing(cron, timezone, body.enabled),
          },
          deps.clock.now(),
        );
        if (!updated) throw notFound('schedule', current.id);
        return present(updated, principalOf(request).user.id);
      },
    );

    r.delete(
      '/agent/schedules/:scheduleId',
      { schema: { params, response: { 200: deleteScheduleResponseSchema }, summary: 'Delete a scheduled agent', tags: ['schedules'] } },
      async (request) => {
        const schedule = await find(request);
        return { success: await deps.store.schedules.delete(schedule.teamId, schedule.id) };
      },
    );

    for (const [action, enabled] of [
      ['pause', false],
      ['resume', true],
    ] as const) {
      r.post(
        `/agent/schedules/:scheduleId/${action}`,
        { schema: { params, response: { 200: scheduleItemSchema }, summary: `${action === 'pause' ? 'Pause' : 'Resume'} a scheduled agent`, tags: ['schedules'] } },
        async (request) => {
          const current = await find(request);
          const { user } = principalOf(request);
          if (current.enabled === enabled) return present(current, principalOf(request).user.id);
          const updated = await deps.store.schedules.update(
            current.teamId,
            current.id,
            {
              ...current,
              updatedBy: user.id,
              enabled,
              // Resuming continues from the next slot after now: no burst for what was missed.
              nextFireAt: timing(current.cron, current.timezone, enabled),
            },
            deps.clock.now(),
          );
          if (!updated) throw notFound('schedule', current.id);
          return present(updated, principalOf(request).user.id);
        },
      );
    }

    r.post(
      '/agent/schedules/:scheduleId/run-now',
      { schema: { params, response: { 200: runAgentResponseSchema }, summary: 'Run a scheduled agent now (ours)', tags: ['schedules'] } },
      async (request) => {
        const schedule = await find(request);
        // A slot of its own (the request time), so run-now never collides with a cron slot's idempotency key.
        const runId = await scheduler.spawn(schedule, deps.clock.now());
        const fresh = await deps.store.schedules.getById(schedule.id);
        if (!runId) throw new OzError('invalid_request', `the run could not be created: ${fresh?.lastSpawnError ?? 'unknown error'}`, { reason: 'spawn_failed' });
        const run = await deps.store.getRun(schedule.teamId, runId);
        if (!run) throw notFound('run', runId);
        return { run_id: run.id, task_id: run.id, state: run.state, at_capacity: run.state === 'QUEUED' };
      },
    );
  };
}
