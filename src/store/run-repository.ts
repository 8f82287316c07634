import type { ExpressionBuilder, Kysely } from 'kysely';
import { conflict, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { ACTIVE_STATES, LEASED_STATES, TERMINAL_STATES, type RunState } from '../core/run-state.js';
import type { ArtifactType, ListRunsQuery, Run, RunArtifact, RunPage } from '../core/run.js';
import { insertEvents } from './event-writer.js';
import { poolNamesOf, WORKER_SEEN_WINDOW_MS } from '../core/worker-pool.js';
import { IDLE_HOLDER_SEEN_MS, routedTo } from './routing-sql.js';
import { workersSeenSince } from './worker-repository.js';
import { toRun } from './rows.js';
import { decodeCursor, encodeCursor, queryFingerprint, sortValueOf } from './run-cursor.js';
import { buildListRunsQuery } from './run-list-sql.js';
import { transitionIn } from './run-transition.js';
import type { Database } from './schema.js';
import type { StoreContext } from './store-context.js';
import type { CreateRunResult, IdempotencyInput, NewRun, TransitionInput } from './store.js';

/** Runs: creation (with idempotency), reads, keyset listing, transitions, admission, cancel requests. */
export class RunRepository {
  constructor(private readonly ctx: StoreContext) {}

  /**
   * Insert a QUEUED run and its first `state` event. With an idempotency key,
   * the key row is inserted first (`ON CONFLICT DO NOTHING`): the request that
   * loses a race finds the winner's row and returns the winner's run; a
   * different body under the same key is a 409.
   */
  async create(input: NewRun, at: number, idempotency?: IdempotencyInput): Promise<CreateRunResult> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const id = newId();
      if (idempotency) {
        const inserted = await tx
          .insertInto('idempotency_keys')
          .values({ team_id: input.teamId, key: idempotency.key, request_hash: idempotency.requestHash, run_id: id, created_at: at })
          .onConflict((oc) => oc.columns(['team_id', 'key']).doNothing())
          .returning('run_id')
          .executeTakeFirst();
        if (!inserted) {
          const existing = await tx
            .selectFrom('idempotency_keys')
            .select(['request_hash', 'run_id'])
            .where('team_id', '=', input.teamId)
            .where('key', '=', idempotency.key)
            .executeTakeFirstOrThrow();
          if (existing.request_hash !== idempotency.requestHash) {
            throw conflict('Idempotency-Key was already used with a different request body', 'idempotency_key_reused');
          }
          const run = await getIn(tx, existing.run_id);
          if (!run) throw notFound('run', existing.run_id);
          return { run, created: false };
        }
      }
      const row = {
        id,
        team_id: input.teamId,
        creator_id: input.creatorId,
        title: input.title,
        prompt: input.prompt,
        source: input.source,
        execution_location: input.executionLocation,
        state: 'QUEUED',
        environment_id: input.environmentId,
        schedule_id: input.schedule?.scheduleId ?? null,
        schedule_name: input.schedule?.scheduleName ?? null,
        schedule_cron: input.schedule?.cronSchedule ?? null,
        parent_run_id: input.parentRunId,
        skill_spec: input.skillSpec,
        name: input.config.name ?? null,
        model_id: input.config.modelId ?? null,
        worker_host: input.config.workerHost ?? null,
        config: JSON.stringify(input.config),
        attempt: 0,
        created_at: at,
        updated_at: at,
        queued_at: at,
        last_event_seq: 1,
      };
      const inserted = await tx.insertInto('runs').values(row).returningAll().executeTakeFirstOrThrow();
      await insertEvents(tx, id, 1, [{ type: 'state', at, data: { from: null, to: 'QUEUED' } }]);
      await tx.insertInto('run_executions').values({ run_id: id, number: 1, state: 'QUEUED', created_at: at }).execute();
      return { run: toRun(inserted), created: true };
    });
  }

  async get(teamId: string, id: string): Promise<Run | null> {
    const row = await this.ctx.db.selectFrom('runs').selectAll().where('team_id', '=', teamId).where('id', '=', id).executeTakeFirst();
    return row ? toRun(row) : null;
  }

  async getById(id: string): Promise<Run | null> {
    return getIn(this.ctx.db, id);
  }

  async list(query: ListRunsQuery): Promise<RunPage> {
    const fingerprint = queryFingerprint(query.teamId, query.filters, query.sortBy, query.sortOrder);
    const after = query.cursor ? decodeCursor(query.cursor, fingerprint, query.sortBy) : null;
    const rows = await buildListRunsQuery(this.ctx.db, query, after).execute();
    const runs = rows.slice(0, query.limit).map(toRun);
    const last = runs[runs.length - 1];
    const nextCursor = rows.length > query.limit && last ? encodeCursor({ value: sortValueOf(last, query.sortBy, query.sortOrder), id: last.id }, fingerprint) : null;
    return { runs, nextCursor };
  }

  async transition(input: TransitionInput): Promise<Run> {
    return this.ctx.ops.writeTx(this.ctx.db, (tx) => transitionIn(tx, input));
  }

  /**
   * Admission: QUEUED → PENDING for the team's oldest queued runs while fewer
   * than `max_concurrent_runs` are active. Count-then-admit is a race between
   * two servers, so it runs under a per-team lock (PostgreSQL: a transaction
   * advisory lock; SQLite: the database write lock of BEGIN IMMEDIATE).
   *
   * A run routed to a name or label (`worker_host`) that no worker seen in
   * the last `WORKER_SEEN_WINDOW_MS` answers to is passed over: it stays
   * QUEUED, holding none of the team's slots, until such a worker shows up
   * (the sweeper admits it then, and says meanwhile what it waits for). An
   * admitted routed run loses that waiting message.
   *
   * A follow-up's execution whose sandbox its worker keeps idle is admitted
   * first, into the slot that sandbox held.
   */
  async admit(teamId: string, at: number): Promise<Run[]> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      await this.ctx.ops.lockTeamForAdmission(tx, teamId);
      const team = await tx.selectFrom('teams').select('max_concurrent_runs').where('id', '=', teamId).executeTakeFirst();
      if (!team) throw notFound('team', teamId);
      // A sandbox kept idle for a follow-up holds one of the team's slots (docs/design.md "Follow-ups and
      // executions"), if its worker is still seen; the follow-up's execution takes that slot up first.
      const heldBySeenWorker = (eb: ExpressionBuilder<Database, 'runs'>) =>
        eb.and([
          eb('idle_until', '>', at),
          eb.exists(
            eb
              .selectFrom('workers')
              .select('workers.id')
              .whereRef('workers.id', '=', 'runs.idle_worker_id')
              .where('workers.last_seen_at', '>', at - IDLE_HOLDER_SEEN_MS),
          ),
        ]);
      const admitted: Run[] = [];
      const resuming = await tx.selectFrom('runs').select(['id']).where('team_id', '=', teamId).where('state', '=', 'QUEUED').where(heldBySeenWorker).execute();
      for (const { id } of resuming) admitted.push(await transitionIn(tx, { runId: id, from: 'QUEUED', to: 'PENDING', by: 'server', at }));
      const { n } = await tx
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('team_id', '=', teamId)
        .where((eb) => eb.or([eb('state', 'in', ACTIVE_STATES), eb.and([eb('state', 'in', TERMINAL_STATES), heldBySeenWorker(eb)])]))
        .executeTakeFirstOrThrow();
      const free = Number(team.max_concurrent_runs) - Number(n);
      if (free <= 0) return admitted;
      const present = poolNamesOf(await workersSeenSince(tx, at - WORKER_SEEN_WINDOW_MS));
      const queued = await tx
        .selectFrom('runs')
        .select(['id', 'worker_host'])
        .where('team_id', '=', teamId)
        .where('state', '=', 'QUEUED')
        .where(routedTo(present))
        .orderBy('queued_at', 'asc')
        .orderBy('id', 'asc')
        .limit(free)
        .execute();
      for (const { id, worker_host } of queued) {
        admitted.push(await transitionIn(tx, { runId: id, from: 'QUEUED', to: 'PENDING', by: 'server', at, ...(worker_host !== null ? { statusMessage: null } : {}) }));
      }
      return admitted;
    });
  }

  async addArtifact(runId: string, type: ArtifactType, data: Record<string, unknown>, at: number): Promise<void> {
    await this.ctx.db
      .insertInto('run_artifacts')
      .values({ id: newId(), run_id: runId, type, data: JSON.stringify(data), created_at: at })
      .execute();
  }

  async listArtifacts(runIds: readonly string[]): Promise<RunArtifact[]> {
    if (runIds.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('run_artifacts')
      .selectAll()
      .where('run_id', 'in', [...runIds])
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
    return rows.map((row) => ({ runId: row.run_id, type: row.type as ArtifactType, data: JSON.parse(row.data) as Record<string, unknown>, createdAt: Number(row.created_at) }));
  }

  async teamsWithQueued(): Promise<string[]> {
    const rows = await this.ctx.db.selectFrom('runs').select('team_id').distinct().where('state', '=', 'QUEUED').execute();
    return rows.map((r) => r.team_id);
  }

  async requestCancel(runId: string, at: number): Promise<Run | null> {
    const row = await this.ctx.db
      .updateTable('runs')
      .set((eb) => ({ cancel_requested_at: eb.fn.coalesce('cancel_requested_at', eb.val(at)), updated_at: at }))
      .where('id', '=', runId)
      .where('state', 'in', LEASED_STATES as RunState[])
      .returningAll()
      .executeTakeFirst();
    return row ? toRun(row) : null;
  }
}

async function getIn(db: Kysely<Database>, id: string): Promise<Run | null> {
  const row = await db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toRun(row) : null;
}
