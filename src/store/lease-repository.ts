import { sql } from 'kysely';
import { isOzError } from '../core/errors.js';
import { LEASED_STATES, type RunState } from '../core/run-state.js';
import type { Run, RunStatusMessage } from '../core/run.js';
import { toRun } from './rows.js';
import { transitionIn } from './run-transition.js';
import type { StoreContext } from './store-context.js';
import type { ClaimInput, SweepOutcome } from './store.js';

const WORKER_LOST: RunStatusMessage = {
  message: 'The worker running this run stopped renewing its lease; the run was lost.',
  error_code: 'resource_unavailable',
  retryable: true,
  reason: 'worker_lost',
};

const CANCELLED_ON_EXPIRY: RunStatusMessage = {
  message: 'Cancelled: the worker did not confirm the cancel before its lease expired.',
  reason: 'cancelled_lease_expired',
};

/** Claims, lease renewal and the expired-lease sweep. */
export class LeaseRepository {
  constructor(private readonly ctx: StoreContext) {}

  async claim(input: ClaimInput): Promise<Run[]> {
    const rows = await this.ctx.ops.claim(this.ctx.db, input);
    return rows.map(toRun).sort((a, b) => (a.stateTimestamps.PENDING ?? 0) - (b.stateTimestamps.PENDING ?? 0) || a.id.localeCompare(b.id));
  }

  /**
   * Extend a live lease. Writes only `lease_expires_at` (never `updated_at`:
   * a heartbeat is not a change users should see). An already expired lease
   * is not revived: the sweeper may be resolving that run right now, and the
   * worker has stopped it (self-fencing) before this point.
   */
  async renew(runId: string, leaseToken: string, leaseTtlMs: number, at: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('runs')
      .set({ lease_expires_at: at + leaseTtlMs })
      .where('id', '=', runId)
      .where('lease_token', '=', leaseToken)
      .where('state', 'in', LEASED_STATES as RunState[])
      .where('lease_expires_at', '>', at)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * End the leases of workers known to be dead (an embedded server restarted
   * on its data dir: its previous embedded worker died with it, and so did
   * that worker's sandboxes): their expiry moves to `expiredAt`, so the next
   * sweep resolves the runs at once instead of a lease TTL later. Returns how
   * many runs it touched.
   */
  async expireHeldBy(workerIdPrefix: string, expiredAt: number): Promise<number> {
    const result = await this.ctx.db
      .updateTable('runs')
      .set({ lease_expires_at: expiredAt })
      .where('state', 'in', LEASED_STATES as RunState[])
      .where('lease_expires_at', '>', expiredAt)
      // An exact, case-sensitive prefix (LIKE is case-insensitive on SQLite).
      .where(sql<boolean>`substr(worker_id, 1, ${workerIdPrefix.length}) = ${workerIdPrefix}`)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * The sweep (cf. graphile-worker's resetLockedAt): find leased runs whose
   * lease ran out and resolve each with its own compare-and-set, conditioned
   * on the same lease token and on the lease still being expired. A worker
   * that renewed in between, or another server sweeping at the same moment,
   * makes the CAS miss and the row is left alone: each outcome happens once.
   *
   * - cancel requested → CANCELLED;
   * - CLAIMED (harness never started), first attempt → PENDING (re-queued once);
   * - otherwise → ERROR resource_unavailable / worker_lost (retryable).
   */
  async sweep(at: number, expiredBefore: number = at): Promise<SweepOutcome[]> {
    const expired = await this.ctx.db
      .selectFrom('runs')
      .select(['id', 'state', 'lease_token', 'attempt', 'cancel_requested_at'])
      .where('lease_expires_at', 'is not', null)
      .where('lease_expires_at', '<=', expiredBefore)
      .where('state', 'in', LEASED_STATES as RunState[])
      .orderBy('lease_expires_at', 'asc')
      .limit(1000)
      .execute();
    const outcomes: SweepOutcome[] = [];
    for (const row of expired) {
      const from = row.state as RunState;
      let to: RunState;
      let reason: string;
      let statusMessage: RunStatusMessage | undefined;
      if (row.cancel_requested_at !== null) {
        to = 'CANCELLED';
        reason = 'cancelled_lease_expired';
        statusMessage = CANCELLED_ON_EXPIRY;
      } else if (from === 'CLAIMED' && Number(row.attempt) < 2) {
        to = 'PENDING';
        reason = 'lease_expired_requeued';
      } else {
        to = 'ERROR';
        reason = 'worker_lost';
        statusMessage = WORKER_LOST;
      }
      try {
        await this.ctx.ops.writeTx(this.ctx.db, (tx) =>
          transitionIn(tx, {
            runId: row.id,
            from,
            to,
            by: 'sweeper',
            at,
            leaseToken: row.lease_token ?? '',
            leaseExpiredBefore: expiredBefore,
            ...(statusMessage ? { statusMessage } : {}),
          }),
        );
        outcomes.push({ runId: row.id, from, to, reason });
      } catch (error) {
        if (isOzError(error) && error.code === 'conflict') continue;
        throw error;
      }
    }
    return outcomes;
  }
}
