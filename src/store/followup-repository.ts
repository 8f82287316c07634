import { conflict, notFound, OzError } from '../core/errors.js';
import { MAX_FOLLOWUPS_PER_RUN, type RunExecution, type RunFollowup } from '../core/execution.js';
import { isTerminal, LEASED_STATES, TERMINAL_STATES, type RunState } from '../core/run-state.js';
import type { RunDiff } from '../core/run-diff.js';
import type { Run, RunStatusMessage, RunUsage } from '../core/run.js';
import { insertEvents, reserveEventSeqs } from './event-writer.js';
import { toRun } from './rows.js';
import { transitionIn } from './run-transition.js';
import type { StoreContext } from './store-context.js';
import type { IdempotencyInput } from './store.js';
import { IDLE_HOLDER_SEEN_MS } from './routing-sql.js';

export interface FollowupResult {
  run: Run;
  followup: RunFollowup;
  /** The follow-up started the run's next execution (the run had ended). */
  startedExecution: boolean;
}

/** A request sent again with its `Idempotency-Key`: nothing was added; the run as it is. */
export interface Replayed {
  run: Run;
  replayed: true;
}

export interface WorkspaceSnapshot {
  runId: string;
  execution: number;
  bytes: number;
  heads: string[];
  createdAt: number;
}

/**
 * Follow-ups, executions, idle sandboxes and workspace snapshots (docs/design.md
 * "Follow-ups and executions").
 */
export class FollowupRepository {
  constructor(private readonly ctx: StoreContext) {}

  /**
   * Send a follow-up: numbered next for the run and written to its
   * conversation as a user message, in one transaction that holds the run's
   * row. An ended run is re-queued in the same transaction (its next
   * execution, one compare-and-set): two follow-ups racing to an ended run
   * start one execution, and the second joins it.
   */
  async add(teamId: string, runId: string, message: string, creatorId: string | null, at: number, idempotency?: IdempotencyInput): Promise<FollowupResult | Replayed> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      // Retry-safe (`Idempotency-Key` with `conversation_id`): the key is the request's; a second one with it sends nothing.
      if (idempotency) {
        const inserted = await tx
          .insertInto('idempotency_keys')
          .values({ team_id: teamId, key: idempotency.key, request_hash: idempotency.requestHash, run_id: runId, created_at: at })
          .onConflict((oc) => oc.columns(['team_id', 'key']).doNothing())
          .returning('run_id')
          .executeTakeFirst();
        if (!inserted) {
          const existing = await tx
            .selectFrom('idempotency_keys')
            .select(['request_hash', 'run_id'])
            .where('team_id', '=', teamId)
            .where('key', '=', idempotency.key)
            .executeTakeFirstOrThrow();
          if (existing.request_hash !== idempotency.requestHash) throw conflict('Idempotency-Key was already used with a different request body', 'idempotency_key_reused');
          const row = await tx.selectFrom('runs').selectAll().where('id', '=', existing.run_id).executeTakeFirst();
          if (!row) throw notFound('run', existing.run_id);
          return { run: toRun(row), replayed: true };
        }
      }
      let query = tx.selectFrom('runs').selectAll().where('id', '=', runId).where('team_id', '=', teamId);
      if (this.ctx.ops.name === 'postgres') query = query.forUpdate();
      const row = await query.executeTakeFirst();
      if (!row) throw notFound('run', runId);
      let run = toRun(row);
      const last = await tx
        .selectFrom('run_followups')
        .select((eb) => eb.fn.max<number | null>('seq').as('seq'))
        .where('run_id', '=', runId)
        .executeTakeFirstOrThrow();
      const seq = Number(last.seq ?? 0) + 1;
      if (seq > MAX_FOLLOWUPS_PER_RUN) {
        throw new OzError('invalid_request', `message: run ${runId} has had ${MAX_FOLLOWUPS_PER_RUN} follow-ups, the most one run takes; start a new run`, {
          reason: 'followup_limit',
        });
      }
      const startedExecution = isTerminal(run.state);
      if (startedExecution) {
        run = await transitionIn(tx, { runId, from: run.state, to: 'QUEUED', by: 'server', at, statusMessage: null });
      }
      const followup: RunFollowup = { runId, seq, message, creatorId, execution: run.execution, createdAt: at };
      await tx.insertInto('run_followups').values({ run_id: runId, seq, message, creator_id: creatorId, execution: run.execution, created_at: at }).execute();
      const eventSeq = await reserveEventSeqs(tx, runId, 1);
      if (eventSeq === null) throw notFound('run', runId);
      await insertEvents(tx, runId, eventSeq, [{ type: 'message', at, data: { role: 'user', text: message, followup: seq, execution: run.execution } }]);
      const fresh = await tx.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
      return { run: toRun(fresh), followup, startedExecution };
    });
  }

  /** The run's follow-ups after `afterSeq`, oldest first. */
  async list(runId: string, afterSeq = 0): Promise<RunFollowup[]> {
    const rows = await this.ctx.db.selectFrom('run_followups').selectAll().where('run_id', '=', runId).where('seq', '>', afterSeq).orderBy('seq', 'asc').execute();
    return rows.map((r) => ({
      runId: r.run_id,
      seq: Number(r.seq),
      message: r.message,
      creatorId: r.creator_id,
      execution: Number(r.execution),
      createdAt: Number(r.created_at),
    }));
  }

  /**
   * The worker has given the agent every follow-up through `seq` (never
   * moves back; only under the run's live lease).
   */
  async markDelivered(runId: string, leaseToken: string, seq: number): Promise<void> {
    // Never past the last follow-up there is: a later one must still reach an agent.
    const last = await this.ctx.db
      .selectFrom('run_followups')
      .select((eb) => eb.fn.max<number | null>('seq').as('seq'))
      .where('run_id', '=', runId)
      .executeTakeFirstOrThrow();
    seq = Math.min(seq, Number(last.seq ?? 0));
    await this.ctx.db
      .updateTable('runs')
      .set({ followups_through: seq })
      .where('id', '=', runId)
      .where('lease_token', '=', leaseToken)
      .where('followups_through', '<', seq)
      .execute();
  }

  /** The executions of these runs, in order. */
  async executions(runIds: readonly string[]): Promise<RunExecution[]> {
    if (runIds.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('run_executions')
      .selectAll()
      .where('run_id', 'in', [...runIds])
      .orderBy('run_id')
      .orderBy('number')
      .execute();
    return rows.map((r) => ({
      runId: r.run_id,
      number: Number(r.number),
      state: r.state as RunState,
      createdAt: Number(r.created_at),
      workerId: r.worker_id,
      workerName: r.worker_name,
      claimedAt: num(r.claimed_at),
      startedAt: num(r.started_at),
      endedAt: num(r.ended_at),
      statusMessage: r.status_message ? (JSON.parse(r.status_message) as RunStatusMessage) : null,
      usage: r.usage ? (JSON.parse(r.usage) as RunUsage) : null,
    }));
  }

  /**
   * The worker that ran the ended execution keeps its sandbox until `until`
   * (only if the run is still ended and its execution is that one; a
   * follow-up that arrived meanwhile leaves the hold as it routes the claim).
   */
  async holdIdle(runId: string, workerId: string, execution: number, until: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('runs')
      .set({ idle_worker_id: workerId, idle_until: until })
      .where('id', '=', runId)
      .where('execution', '=', execution)
      .where('worker_id', '=', workerId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The idle sandbox is gone (torn down, or taken up by the next execution's claim). */
  async releaseIdle(runId: string, workerId: string): Promise<void> {
    await this.ctx.db.updateTable('runs').set({ idle_worker_id: null, idle_until: null }).where('id', '=', runId).where('idle_worker_id', '=', workerId).execute();
  }

  /**
   * Of these runs, those whose sandbox the worker may keep: held by it and
   * not lapsed, or taken up by the run's next execution on it.
   */
  async idleHeldBy(workerId: string, runIds: readonly string[], at: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('runs')
      .select(['id', 'idle_until', 'state', 'worker_id'])
      .where('id', 'in', [...runIds])
      .where('idle_worker_id', '=', workerId)
      .execute();
    return rows.filter((r) => (r.idle_until !== null && Number(r.idle_until) > at) || (!isTerminal(r.state as RunState) && r.worker_id === workerId)).map((r) => r.id);
  }

  /** A cancel of an ended run: its idle sandbox goes (the worker learns it at its next check). */
  async endIdle(runId: string, at: number): Promise<boolean> {
    const result = await this.ctx.db.updateTable('runs').set({ idle_until: at }).where('id', '=', runId).where('idle_until', '>', at).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Follow-ups the ended execution's agent never had (sent as it ended): the
   * run's next execution starts for them, in one compare-and-set. True when it did.
   */
  async continueUndelivered(runId: string, at: number): Promise<boolean> {
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      let query = tx.selectFrom('runs').select(['state', 'followups_through', 'execution']).where('id', '=', runId);
      if (this.ctx.ops.name === 'postgres') query = query.forUpdate();
      const row = await query.executeTakeFirst();
      // Only after an agent that ran and ended on its own (SUCCEEDED, FAILED): a cancelled run stays so, and
      // an execution that never got its agent going (a sandbox that cannot start, a failing setup) would fail
      // the same way again and again. Their follow-ups go with the next one the user sends.
      if (!row || (row.state !== 'SUCCEEDED' && row.state !== 'FAILED')) return false;
      const execution = await tx.selectFrom('run_executions').select('started_at').where('run_id', '=', runId).where('number', '=', Number(row.execution)).executeTakeFirst();
      if (!execution || execution.started_at === null) return false;
      const waiting = await tx.selectFrom('run_followups').select('seq').where('run_id', '=', runId).where('seq', '>', Number(row.followups_through)).limit(1).executeTakeFirst();
      if (!waiting) return false;
      await transitionIn(tx, {
        runId,
        from: row.state,
        to: 'QUEUED',
        by: 'server',
        at,
        statusMessage: null,
      });
      return true;
    });
  }

  /** Holds of workers that stopped answering (or lapsed): cleared so admission stops counting them. */
  async clearLapsedIdle(at: number): Promise<number> {
    const result = await this.ctx.db
      .updateTable('runs')
      .set({ idle_worker_id: null, idle_until: null })
      .where((eb) =>
        eb.or([
          eb('idle_until', '<=', at),
          // A worker no longer seen holds nothing (it checks on its idle sandboxes every few seconds).
          eb.not(
            eb.exists(
              eb
                .selectFrom('workers')
                .select('workers.id')
                .whereRef('workers.id', '=', 'runs.idle_worker_id')
                .where('workers.last_seen_at', '>', at - IDLE_HOLDER_SEEN_MS),
            ),
          ),
        ]),
      )
      .where('idle_worker_id', 'is not', null)
      .where('state', 'in', TERMINAL_STATES as RunState[])
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Keep the workspace the execution left (replacing the run's earlier one), under the run's live lease. */
  async putWorkspaceSnapshot(runId: string, leaseToken: string, execution: number, data: Buffer, heads: readonly string[], at: number): Promise<void> {
    await this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const held = await tx.selectFrom('runs').select(['id']).where('id', '=', runId).where('lease_token', '=', leaseToken).where('execution', '=', execution).executeTakeFirst();
      if (!held) throw conflict(`run ${runId}: lease token is stale`, 'stale_lease');
      await tx.deleteFrom('run_workspace_snapshots').where('run_id', '=', runId).execute();
      await tx
        .insertInto('run_workspace_snapshots')
        .values({ run_id: runId, execution, bytes: data.length, heads: JSON.stringify(heads), data, created_at: at })
        .execute();
    });
  }

  /** Record the patches an execution published (replacing the run's earlier one per repository), under the run's live lease. */
  async putDiffs(runId: string, leaseToken: string, diffs: readonly Omit<RunDiff, 'runId' | 'execution' | 'createdAt'>[], at: number): Promise<void> {
    await this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const held = await tx
        .selectFrom('runs')
        .select(['execution'])
        .where('id', '=', runId)
        .where('lease_token', '=', leaseToken)
        .where('state', 'in', LEASED_STATES as RunState[])
        .executeTakeFirst();
      if (!held) throw conflict(`run ${runId}: lease token is stale`, 'stale_lease');
      for (const d of diffs) {
        await tx.deleteFrom('run_diffs').where('run_id', '=', runId).where('repository', '=', d.repository).execute();
        await tx
          .insertInto('run_diffs')
          .values({
            run_id: runId,
            repository: d.repository,
            execution: Number(held.execution),
            base: d.base,
            head: d.head,
            patch: d.patch,
            bytes: d.bytes,
            truncated: d.truncated ? 1 : 0,
            created_at: at,
          })
          .execute();
      }
    });
  }

  /** The run's patches, by repository. */
  async diffs(runId: string): Promise<RunDiff[]> {
    const rows = await this.ctx.db.selectFrom('run_diffs').selectAll().where('run_id', '=', runId).orderBy('repository').execute();
    return rows.map((r) => ({
      runId: r.run_id,
      repository: r.repository,
      execution: Number(r.execution),
      base: r.base,
      head: r.head,
      patch: r.patch,
      bytes: Number(r.bytes),
      truncated: Number(r.truncated) === 1,
      createdAt: Number(r.created_at),
    }));
  }

  /** Drop the snapshots of ended runs kept since before `before` (a retention sweep); returns how many. */
  async forgetWorkspaceSnapshots(before: number): Promise<number> {
    const result = await this.ctx.db
      .deleteFrom('run_workspace_snapshots')
      .where('created_at', '<', before)
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom('runs')
            .select('runs.id')
            .whereRef('runs.id', '=', 'run_workspace_snapshots.run_id')
            .where('runs.state', 'in', TERMINAL_STATES as RunState[]),
        ),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async workspaceSnapshot(runId: string): Promise<WorkspaceSnapshot | null> {
    const row = await this.ctx.db
      .selectFrom('run_workspace_snapshots')
      .select(['run_id', 'execution', 'bytes', 'heads', 'created_at'])
      .where('run_id', '=', runId)
      .executeTakeFirst();
    return row
      ? { runId: row.run_id, execution: Number(row.execution), bytes: Number(row.bytes), heads: JSON.parse(row.heads) as string[], createdAt: Number(row.created_at) }
      : null;
  }

  async workspaceSnapshotData(runId: string): Promise<Buffer | null> {
    const row = await this.ctx.db.selectFrom('run_workspace_snapshots').select('data').where('run_id', '=', runId).executeTakeFirst();
    return row ? Buffer.from(row.data) : null;
  }
}

function num(value: number | null): number | null {
  return value === null ? null : Number(value);
}
