import { RUN_STATES, TERMINAL_STATES } from '../core/run-state.js';
import type { Schedule } from '../core/schedule.js';
import { isOzError } from '../core/errors.js';
import { nextSlot } from './cron.js';
import type { ServerDeps } from './deps.js';
import { Periodic } from './periodic.js';
import type { RunService } from './run-service.js';
import type { RunAgentRequest } from '../api/run-requests.js';

/** A taken slot whose spawn never got recorded is retried after this long (the scheduler died meanwhile). */
const STALL_MS = 30_000;
const BATCH = 100;

/**
 * Fires schedules (in every server): each due slot is taken with a
 * compare-and-set of `next_fire_at` plus a unique `(schedule, slot)` row, so
 * one slot fires once however many servers run this. After downtime a
 * schedule fires once for what it missed, then moves to its next slot after
 * now (no burst). Runs go through the run service like the API's (admission,
 * idempotency key `schedule:<id>:<slot>`), as `SCHEDULED_AGENT`, on behalf of
 * the schedule's creator, who is who they are attributed to; personal
 * secrets are never resolved for them. The clock is injected: tests call
 * `tick()` and drive hours in milliseconds.
 */
export class Scheduler extends Periodic {
  constructor(
    private readonly deps: ServerDeps,
    private readonly runs: RunService,
    intervalMs: number,
  ) {
    super(intervalMs);
  }

  /** One pass: due slots, queued slots whose previous run ended, stalled spawns. */
  async tick(): Promise<void> {
    const { store, clock, logger } = this.deps;
    try {
      const now = clock.now();
      for (const schedule of await store.schedules.due(now, BATCH)) {
        const slot = schedule.nextFireAt as number;
        if (!(await store.schedules.takeSlot(schedule.id, slot, nextSlot(schedule.cron, schedule.timezone, now), now))) continue;
        await this.fire(schedule, slot);
      }
      for (const schedule of await store.schedules.withQueuedSlot(BATCH)) {
        const slot = schedule.queuedSlot as number;
        if ((await this.activeRuns(schedule)).length > 0) continue;
        if (!(await store.schedules.takeQueuedSlot(schedule.id, slot))) continue;
        await this.spawn(schedule, slot);
      }
      for (const stalled of await store.schedules.stalledFires(now - STALL_MS, BATCH)) {
        const schedule = await store.schedules.getById(stalled.scheduleId);
        if (schedule) await this.spawn(schedule, stalled.slot);
      }
    } catch (error) {
      logger.error({ err: error }, 'scheduler pass failed');
    }
  }

  private async activeRuns(schedule: Schedule): Promise<string[]> {
    const page = await this.deps.store.listRuns({
      teamId: schedule.teamId,
      filters: { scheduleId: schedule.id, states: RUN_STATES.filter((s) => !TERMINAL_STATES.includes(s)) },
      sortBy: 'created_at',
      sortOrder: 'asc',
      limit: 50,
    });
    return page.runs.map((r) => r.id);
  }

  /** A taken slot, under the schedule's overlap policy. */
  private async fire(schedule: Schedule, slot: number): Promise<void> {
    const { store } = this.deps;
    const active = schedule.overlapPolicy === 'allow' ? [] : await this.activeRuns(schedule);
    if (active.length > 0) {
      if (schedule.overlapPolicy === 'skip') return store.schedules.recordFire(schedule.id, slot, 'skipped');
      if (schedule.overlapPolicy === 'queue') {
        // At most one waits: a later slot while one waits is skipped.
        return store.schedules.recordFire(schedule.id, slot, (await store.schedules.queueSlot(schedule.id, slot)) ? 'queued' : 'skipped');
      }
      const actor = await this.actor(schedule);
      for (const runId of active) {
        try {
          if (actor) await this.runs.cancel(actor, runId);
        } catch (error) {
          // A run that finished meanwhile is no longer cancellable; the database being away is not that.
          if (!isOzError(error) || error.code === 'resource_unavailable') throw error;
        }
      }
    }
    await this.spawn(schedule, slot);
  }

  private async actor(schedule: Schedule) {
    const user = await this.deps.store.getUser(schedule.creatorId);
    const team = await this.deps.store.getTeam(schedule.teamId);
    return user && team ? { user, team } : null;
  }

  /** Create the slot's run (idempotent per slot) and record the outcome; a failure goes to `last_spawn_error`. */
  async spawn(schedule: Schedule, slot: number): Promise<string | null> {
    const { store, logger } = this.deps;
    await store.schedules.addFire(schedule.id, slot, this.deps.clock.now());
    try {
      const actor = await this.actor(schedule);
      if (!actor) throw new Error(`the schedule's creator ${schedule.creatorId} no longer exists`);
      const body = { prompt: schedule.prompt, title: schedule.name, config: schedule.agentConfig } as RunAgentRequest;
      const { run } = await this.runs.create(actor, body, {
        source: 'SCHEDULED_AGENT',
        idempotencyKey: `schedule:${schedule.id}:${slot}`,
        schedule: { scheduleId: schedule.id, scheduleName: schedule.name, cronSchedule: schedule.cron },
      });
      await store.schedules.recordFire(schedule.id, slot, 'spawned', { runId: run.id });
      return run.id;
    } catch (error) {
      const message = (error as Error).message;
      logger.warn({ scheduleId: schedule.id, slot, err: error }, 'scheduled run could not be created');
      await store.schedules.recordFire(schedule.id, slot, 'failed', { error: message });
      return null;
    }
  }
}
