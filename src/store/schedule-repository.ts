import type { Kysely } from 'kysely';
import { newId } from '../core/ids.js';
import type { FireOutcome, NewSchedule, OverlapPolicy, Schedule, ScheduleUpdate } from '../core/schedule.js';
import { numberOrNull, ownerOfScope, scopeOfOwner } from './rows.js';
import type { Database, SchedulesTable } from './schema.js';
import type { StoreContext } from './store-context.js';
import { isUniqueViolation } from './unique-violation.js';

function toSchedule(row: SchedulesTable): Schedule {
  return {
    id: row.id,
    teamId: row.team_id,
    scope: scopeOfOwner(row.owner_user_id),
    creatorId: row.creator_id,
    updatedBy: row.updated_by,
    name: row.name,
    cron: row.cron,
    timezone: row.timezone,
    overlapPolicy: row.overlap_policy as OverlapPolicy,
    enabled: Number(row.enabled) === 1,
    prompt: row.prompt,
    agentConfig: JSON.parse(row.agent_config) as Record<string, unknown>,
    nextFireAt: numberOrNull(row.next_fire_at),
    queuedSlot: numberOrNull(row.queued_slot),
    lastFiredAt: numberOrNull(row.last_fired_at),
    lastRunId: row.last_run_id,
    lastSpawnError: row.last_spawn_error,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/**
 * Schedules and their fired slots. A slot is taken with one compare-and-set
 * of `next_fire_at` and the insert of its `(schedule_id, slot)` row, in one
 * transaction: of any number of schedulers, one takes it.
 */
export class ScheduleRepository {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: NewSchedule, at: number): Promise<Schedule> {
    const row: SchedulesTable = {
      id: newId(),
      team_id: input.teamId,
      owner_user_id: ownerOfScope(input.scope),
      creator_id: input.creatorId,
      updated_by: input.creatorId,
      name: input.name,
      cron: input.cron,
      timezone: input.timezone,
      overlap_policy: input.overlapPolicy,
      enabled: input.enabled ? 1 : 0,
      prompt: input.prompt,
      agent_config: JSON.stringify(input.agentConfig),
      next_fire_at: input.nextFireAt,
      queued_slot: null,
      last_fired_at: null,
      last_run_id: null,
      last_spawn_error: null,
      created_at: at,
      updated_at: at,
    };
    await this.ctx.db.insertInto('schedules').values(row).execute();
    return toSchedule(row);
  }

  private visible(db: Kysely<Database>, teamId: string, viewerId: string | undefined) {
    return db
      .selectFrom('schedules')
      .selectAll()
      .where('team_id', '=', teamId)
      .where((eb) => (viewerId === undefined ? eb('owner_user_id', 'is', null) : eb.or([eb('owner_user_id', 'is', null), eb('owner_user_id', '=', viewerId)])));
  }

  async get(teamId: string, id: string, viewerId?: string): Promise<Schedule | null> {
    const row = await this.visible(this.ctx.db, teamId, viewerId).where('id', '=', id).executeTakeFirst();
    return row ? toSchedule(row) : null;
  }

  async getById(id: string): Promise<Schedule | null> {
    const row = await this.ctx.db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toSchedule(row) : null;
  }

  /** Sorted by name, as the spec's list. */
  async list(teamId: string, viewerId?: string): Promise<Schedule[]> {
    return (await this.visible(this.ctx.db, teamId, viewerId).orderBy('name').orderBy('id').execute()).map(toSchedule);
  }

  /**
   * Full replace of the template and timing; a queued slot is dropped when the
   * schedule is paused. With `creatorId`, the schedule changes hands: its
   * runs are made on behalf of that user from now on (docs/schedules.md).
   */
  async update(teamId: string, id: string, update: ScheduleUpdate & { creatorId?: string }, at: number): Promise<Schedule | null> {
    const row = await this.ctx.db
      .updateTable('schedules')
      .set({
        ...(update.creatorId !== undefined ? { creator_id: update.creatorId } : {}),
        updated_by: update.updatedBy,
        name: update.name,
        cron: update.cron,
        timezone: update.timezone,
        overlap_policy: update.overlapPolicy,
        enabled: update.enabled ? 1 : 0,
        prompt: update.prompt,
        agent_config: JSON.stringify(update.agentConfig),
        next_fire_at: update.nextFireAt,
        ...(update.enabled ? {} : { queued_slot: null }),
        updated_at: at,
      })
      .where('team_id', '=', teamId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row ? toSchedule(row) : null;
  }

  async delete(teamId: string, id: string): Promise<boolean> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const result = await tx.deleteFrom('schedules').where('team_id', '=', teamId).where('id', '=', id).executeTakeFirst();
      await tx.deleteFrom('schedule_fires').where('schedule_id', '=', id).execute();
      return Number(result.numDeletedRows) > 0;
    });
  }

  /** Enabled schedules whose next slot has come, oldest first. */
  async due(now: number, limit: number): Promise<Schedule[]> {
    const rows = await this.ctx.db.selectFrom('schedules').selectAll().where('enabled', '=', 1).where('next_fire_at', '<=', now).orderBy('next_fire_at').limit(limit).execute();
    return rows.map(toSchedule);
  }

  /** Schedules with a queued slot waiting for their previous run. */
  async withQueuedSlot(limit: number): Promise<Schedule[]> {
    const rows = await this.ctx.db.selectFrom('schedules').selectAll().where('enabled', '=', 1).where('queued_slot', 'is not', null).limit(limit).execute();
    return rows.map(toSchedule);
  }

  /**
   * Take `slot` of the schedule: move `next_fire_at` from `slot` to `next` and
   * record the slot, in one transaction. False when another scheduler took it
   * (or the schedule changed meanwhile).
   */
  async takeSlot(scheduleId: string, slot: number, next: number | null, at: number): Promise<boolean> {
    try {
      return await this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
        const moved = await tx
          .updateTable('schedules')
          .set({ next_fire_at: next, last_fired_at: slot })
          .where('id', '=', scheduleId)
          .where('enabled', '=', 1)
          .where('next_fire_at', '=', slot)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) return false;
        await tx.insertInto('schedule_fires').values({ schedule_id: scheduleId, slot, outcome: 'pending', run_id: null, created_at: at }).execute();
        return true;
      });
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  /** Take the queued slot (compare-and-set to null); false when another scheduler did. */
  async takeQueuedSlot(scheduleId: string, slot: number): Promise<boolean> {
    const result = await this.ctx.db.updateTable('schedules').set({ queued_slot: null }).where('id', '=', scheduleId).where('queued_slot', '=', slot).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Queue `slot` unless one already waits; false when one did. */
  async queueSlot(scheduleId: string, slot: number): Promise<boolean> {
    const result = await this.ctx.db.updateTable('schedules').set({ queued_slot: slot }).where('id', '=', scheduleId).where('queued_slot', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** What became of a slot; a spawn records the run (or the error) on the schedule too. */
  async recordFire(scheduleId: string, slot: number, outcome: FireOutcome, detail: { runId?: string; error?: string } = {}): Promise<void> {
    await this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      await tx
        .updateTable('schedule_fires')
        .set({ outcome, run_id: detail.runId ?? null })
        .where('schedule_id', '=', scheduleId)
        .where('slot', '=', slot)
        .execute();
      if (outcome === 'spawned')
        await tx
          .updateTable('schedules')
          .set({ last_run_id: detail.runId ?? null, last_spawn_error: null })
          .where('id', '=', scheduleId)
          .execute();
      if (outcome === 'failed')
        await tx
          .updateTable('schedules')
          .set({ last_spawn_error: detail.error ?? 'unknown error' })
          .where('id', '=', scheduleId)
          .execute();
    });
  }

  /** Add a slot row outside the cron (run-now, a queued slot being spawned); false if it exists. */
  async addFire(scheduleId: string, slot: number, at: number): Promise<boolean> {
    try {
      await this.ctx.db.insertInto('schedule_fires').values({ schedule_id: scheduleId, slot, outcome: 'pending', run_id: null, created_at: at }).execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  /** Slots taken but never resolved (the scheduler died between taking and spawning). */
  async stalledFires(before: number, limit: number): Promise<{ scheduleId: string; slot: number }[]> {
    const rows = await this.ctx.db
      .selectFrom('schedule_fires')
      .select(['schedule_id', 'slot'])
      .where('outcome', '=', 'pending')
      .where('created_at', '<', before)
      .limit(limit)
      .execute();
    return rows.map((r) => ({ scheduleId: r.schedule_id, slot: Number(r.slot) }));
  }

  async fires(scheduleId: string): Promise<{ slot: number; outcome: FireOutcome; runId: string | null }[]> {
    const rows = await this.ctx.db.selectFrom('schedule_fires').selectAll().where('schedule_id', '=', scheduleId).orderBy('slot').execute();
    return rows.map((r) => ({ slot: Number(r.slot), outcome: r.outcome as FireOutcome, runId: r.run_id }));
  }
}
