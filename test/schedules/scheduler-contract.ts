import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { Team, User } from '../../src/core/identity.js';
import type { OverlapPolicy } from '../../src/core/schedule.js';
import { Envelope } from '../../src/secrets/envelope.js';
import { nextSlot } from '../../src/server/cron.js';
import type { ServerDeps } from '../../src/server/deps.js';
import { EventHub } from '../../src/server/event-hub.js';
import { RunService } from '../../src/server/run-service.js';
import { Scheduler } from '../../src/server/scheduler.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { openFromSpec, type StoreFactory, type StoreHandle } from '../support/store-factories.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);

function depsFor(store: SqlStore, clock: ManualClock): ServerDeps {
  return {
    store,
    clock,
    envelope: new Envelope(randomBytes(32)),
    hub: new EventHub(null),
    logger: pino({ level: 'silent' }),
    models: { defaultModel: null, models: [] },
    teamMaxConcurrentRuns: 1000,
    leaseTtlMs: 30_000,
  };
}

/**
 * The scheduler against a real store with an injected clock: hours of cron
 * driven in milliseconds by calling `tick()` after each clock step.
 */
export function describeSchedulerContract(factory: StoreFactory): void {
  describe(`the scheduler on ${factory.name}`, () => {
    let handle: StoreHandle;
    let store: SqlStore;
    let clock: ManualClock;
    let scheduler: Scheduler;
    let runs: RunService;
    let team: Team;
    let user: User;

    beforeAll(async () => {
      handle = await factory.open();
      store = handle.store;
      clock = new ManualClock(T0);
      const deps = depsFor(store, clock);
      runs = new RunService(deps);
      scheduler = new Scheduler(deps, runs, 1000);
      team = await store.createTeam({ name: `team-${randomBytes(4).toString('hex')}`, maxConcurrentRuns: 1000 }, T0);
      user = await store.createUser({ teamId: team.id, email: `${randomBytes(4).toString('hex')}@example.test`, displayName: null, role: 'admin' }, T0);
    });
    afterAll(async () => {
      await handle?.cleanup();
    });
    // Each test's schedules end with it, so later tests' clock jumps do not fire them.
    afterEach(async () => {
      for (const s of await store.schedules.list(team.id, user.id)) await store.schedules.delete(team.id, s.id);
    });

    const schedule = async (cron: string, options: { timezone?: string; overlap?: OverlapPolicy; agentConfig?: Record<string, unknown> } = {}) => {
      const timezone = options.timezone ?? 'UTC';
      return store.schedules.create(
        {
          teamId: team.id,
          scope: { type: 'team' },
          creatorId: user.id,
          name: `s-${randomBytes(3).toString('hex')}`,
          cron,
          timezone,
          overlapPolicy: options.overlap ?? 'allow',
          enabled: true,
          prompt: 'echo scheduled',
          agentConfig: options.agentConfig ?? { harness: { type: 'command' } },
          nextFireAt: nextSlot(cron, timezone, clock.now()),
        },
        clock.now(),
      );
    };
    const runsOf = async (scheduleId: string) => (await store.listRuns({ teamId: team.id, filters: { scheduleId }, sortBy: 'created_at', sortOrder: 'asc', limit: 1000 })).runs;
    /** Advance the clock in steps, ticking after each. */
    const drive = async (ms: number, step = MINUTE): Promise<void> => {
      for (let t = 0; t < ms; t += step) {
        clock.advance(step);
        await scheduler.tick();
      }
    };
    const finish = async (runId: string): Promise<void> => {
      await runs.cancel({ team, user }, runId);
    };

    it('*/5 * * * * over one hour makes exactly 12 runs, as SCHEDULED_AGENT with the schedule named', async () => {
      clock.set(T0);
      const s = await schedule('*/5 * * * *');
      await drive(60 * MINUTE);
      const made = await runsOf(s.id);
      expect(made).toHaveLength(12);
      expect(made.map((r) => new Date(r.createdAt).toISOString().slice(11, 16))).toEqual([
        '00:05',
        '00:10',
        '00:15',
        '00:20',
        '00:25',
        '00:30',
        '00:35',
        '00:40',
        '00:45',
        '00:50',
        '00:55',
        '01:00',
      ]);
      expect(made.every((r) => r.source === 'SCHEDULED_AGENT' && r.schedule?.scheduleId === s.id && r.schedule.cronSchedule === '*/5 * * * *')).toBe(true);
      const fresh = await store.schedules.getById(s.id);
      expect(fresh?.lastRunId).toBe(made.at(-1)?.id);
      expect(fresh?.nextFireAt).toBe(T0 + 65 * MINUTE);
    });

    it('pause stops it; resume continues from the next slot without a burst', async () => {
      clock.set(T0);
      const s = await schedule('*/5 * * * *');
      await drive(30 * MINUTE);
      expect(await runsOf(s.id)).toHaveLength(6);
      const pause = { ...s, updatedBy: user.id };
      await store.schedules.update(team.id, s.id, { ...pause, enabled: false, nextFireAt: null }, clock.now());
      await drive(60 * MINUTE);
      expect(await runsOf(s.id)).toHaveLength(6);
      // Resumed at 01:32: the next slot is 01:35, and nothing for the hour it missed.
      clock.advance(2 * MINUTE);
      await store.schedules.update(team.id, s.id, { ...pause, enabled: true, nextFireAt: nextSlot(s.cron, 'UTC', clock.now()) }, clock.now());
      await scheduler.tick();
      expect(await runsOf(s.id)).toHaveLength(6);
      await drive(8 * MINUTE);
      const made = await runsOf(s.id);
      expect(made).toHaveLength(8);
      expect(made.slice(6).map((r) => new Date(r.createdAt).toISOString().slice(11, 16))).toEqual(['01:35', '01:40']);
    });

    it('after downtime it fires once for what it missed, then keeps to its slots', async () => {
      clock.set(T0);
      const s = await schedule('*/5 * * * *');
      clock.advance(3 * 60 * MINUTE + 2 * MINUTE); // down from 00:00 to 03:02
      await scheduler.tick();
      await scheduler.tick();
      expect(await runsOf(s.id)).toHaveLength(1);
      expect((await store.schedules.getById(s.id))?.nextFireAt).toBe(T0 + 185 * MINUTE);
      await drive(3 * MINUTE);
      expect(await runsOf(s.id)).toHaveLength(2);
    });

    it('overlap allow: every slot runs, whatever is still going', async () => {
      clock.set(T0);
      const s = await schedule('* * * * *', { overlap: 'allow' });
      await drive(3 * MINUTE);
      expect(await runsOf(s.id)).toHaveLength(3);
    });

    it('overlap skip: slots while a run is going are skipped', async () => {
      clock.set(T0);
      const s = await schedule('* * * * *', { overlap: 'skip' });
      await drive(3 * MINUTE);
      const made = await runsOf(s.id);
      expect(made).toHaveLength(1);
      await finish(made[0]?.id as string);
      await drive(MINUTE);
      expect(await runsOf(s.id)).toHaveLength(2);
      expect((await store.schedules.fires(s.id)).map((f) => f.outcome)).toEqual(['spawned', 'skipped', 'skipped', 'spawned']);
    });

    it('overlap queue: one slot waits for the going run, later ones are skipped', async () => {
      clock.set(T0);
      const s = await schedule('* * * * *', { overlap: 'queue' });
      await drive(3 * MINUTE);
      expect(await runsOf(s.id)).toHaveLength(1);
      expect((await store.schedules.fires(s.id)).map((f) => f.outcome)).toEqual(['spawned', 'queued', 'skipped']);
      await finish((await runsOf(s.id))[0]?.id as string);
      await scheduler.tick(); // the queued slot runs as soon as the previous run is over
      const made = await runsOf(s.id);
      expect(made).toHaveLength(2);
      expect((await store.schedules.fires(s.id)).map((f) => f.outcome)).toEqual(['spawned', 'spawned', 'skipped']);
      expect(made[1]?.createdAt).toBe(clock.now());
    });

    it('overlap cancel_previous: a slot cancels the going run and starts its own', async () => {
      clock.set(T0);
      const s = await schedule('* * * * *', { overlap: 'cancel_previous' });
      await drive(2 * MINUTE);
      const made = await runsOf(s.id);
      expect(made).toHaveLength(2);
      expect(made[0]?.state).toBe('CANCELLED');
      expect(made[1]?.state).not.toBe('CANCELLED');
    });

    it('a spawn failure is recorded in last_spawn_error, and later slots still fire', async () => {
      clock.set(T0);
      const env = await store.createEnvironment(
        {
          teamId: team.id,
          scope: { type: 'team' },
          creatorId: user.id,
          name: 'doomed',
          description: null,
          config: { repos: [], setupCommands: [], env: {}, network: 'off', secrets: [], limits: {} },
        },
        T0,
      );
      const s = await schedule('* * * * *', { agentConfig: { harness: { type: 'command' }, environment_id: env.id } });
      await store.deleteEnvironment(team.id, env.id);
      await drive(MINUTE);
      const failed = await store.schedules.getById(s.id);
      expect(failed?.lastSpawnError).toContain(`environment ${env.id} not found`);
      expect(failed?.nextFireAt).toBe(T0 + 2 * MINUTE); // the failed slot is spent; the next one is due
      expect(await runsOf(s.id)).toHaveLength(0);
      await store.schedules.update(team.id, s.id, { ...s, updatedBy: user.id, agentConfig: { harness: { type: 'command' } }, nextFireAt: failed?.nextFireAt ?? null }, clock.now());
      await drive(MINUTE);
      expect(await runsOf(s.id)).toHaveLength(1);
      expect((await store.schedules.getById(s.id))?.lastSpawnError).toBeNull();
    });

    it('in America/New_York, DST behaves as croner documents: a missing 02:30 fires at 03:30, a repeated 01:30 fires once', async () => {
      clock.set(Date.UTC(2026, 2, 7, 12, 0));
      const spring = await schedule('30 2 * * *', { timezone: 'America/New_York' });
      await drive(3 * 24 * 60 * MINUTE, 30 * MINUTE);
      expect((await runsOf(spring.id)).map((r) => new Date(r.createdAt).toISOString())).toEqual([
        '2026-03-08T07:30:00.000Z', // 03:30 EDT: 02:30 does not exist that day
        '2026-03-09T06:30:00.000Z', // 02:30 EDT
        '2026-03-10T06:30:00.000Z',
      ]);
      clock.set(Date.UTC(2026, 9, 31, 12, 0));
      const fall = await schedule('30 1 * * *', { timezone: 'America/New_York' });
      await drive(2 * 24 * 60 * MINUTE, 30 * MINUTE);
      expect((await runsOf(fall.id)).map((r) => new Date(r.createdAt).toISOString())).toEqual([
        '2026-11-01T05:30:00.000Z', // the first 01:30 (EDT); the second (EST) does not fire again
        '2026-11-02T06:30:00.000Z',
      ]);
    });
  });
}

/**
 * Two schedulers ticking the same slots at once. On PostgreSQL each has its own
 * connection pool, as two `oz server` processes would. SQLite allows one server
 * per data dir (the data-dir lock), and two synchronous better-sqlite3
 * connections in one process would block each other's event loop, so there the
 * two schedulers share the store and race through its interleaved transactions.
 */
export function describeSchedulerRace(factory: StoreFactory, slots: number): void {
  describe(`two schedulers on one ${factory.name} database`, () => {
    let handle: StoreHandle;
    let other: SqlStore;
    let ownsOther = false;
    beforeAll(async () => {
      handle = await factory.open();
      ownsOther = handle.spec.kind !== 'sqlite';
      other = ownsOther ? await openFromSpec(handle.spec) : handle.store;
    });
    afterAll(async () => {
      if (ownsOther) await other?.close();
      await handle?.cleanup();
    });

    it(`race over ${slots} slots and create exactly ${slots} runs`, async () => {
      const clock = new ManualClock(T0);
      const a = new Scheduler(depsFor(handle.store, clock), new RunService(depsFor(handle.store, clock)), 1000);
      const b = new Scheduler(depsFor(other, clock), new RunService(depsFor(other, clock)), 1000);
      const team = await handle.store.createTeam({ name: 'race', maxConcurrentRuns: 10_000 }, T0);
      const user = await handle.store.createUser({ teamId: team.id, email: 'race@example.test', displayName: null, role: 'admin' }, T0);
      const s = await handle.store.schedules.create(
        {
          teamId: team.id,
          scope: { type: 'team' },
          creatorId: user.id,
          name: 'race',
          cron: '* * * * *',
          timezone: 'UTC',
          overlapPolicy: 'allow',
          enabled: true,
          prompt: 'true',
          agentConfig: { harness: { type: 'command' } },
          nextFireAt: T0 + MINUTE,
        },
        T0,
      );
      for (let i = 0; i < slots; i++) {
        clock.advance(MINUTE);
        await Promise.all([a.tick(), b.tick(), a.tick()]);
      }
      const all = await handle.store.listRuns({ teamId: team.id, filters: { scheduleId: s.id }, sortBy: 'created_at', sortOrder: 'asc', limit: 1000 });
      expect(all.runs).toHaveLength(slots);
      expect(new Set(all.runs.map((r) => r.createdAt)).size).toBe(slots);
      const fires = await handle.store.schedules.fires(s.id);
      expect(fires).toHaveLength(slots);
      expect(fires.every((f) => f.outcome === 'spawned')).toBe(true);
    });
  });
}
