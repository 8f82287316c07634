import type { ServerDeps } from './deps.js';
import { Periodic } from './periodic.js';
import type { RunService } from './run-service.js';
import { forgetGoneWorkers, updateWaitingMessages } from './worker-pools.js';
import { followupSettings } from './followup-handover.js';

/**
 * How long past its expiry a lease is left alone before the sweep resolves
 * the run. A worker's sandbox fences itself before the lease expires (its
 * dead-man's switch, renewed by heartbeats, runs out a margin earlier), even
 * when the worker process is frozen; the grace covers the switch's reaction
 * time, so a re-queued run never starts while the previous attempt still runs.
 */
export function sweepGraceMs(leaseTtlMs: number): number {
  return Math.min(10_000, Math.max(1000, Math.floor(leaseTtlMs / 6)));
}

/** How often the sweep forgets workers not seen for a day. */
const FORGET_EVERY_MS = 60_000;

/**
 * The server's housekeeping loop, every `intervalMs`: resolve expired leases
 * (store.sweepExpiredLeases: re-queue once, cancel, or ERROR worker_lost),
 * admit queued runs of every team that has some (covers slots freed by
 * finishes handled on other servers, and routed runs whose worker just
 * appeared), then say what each routed run still waiting waits for
 * (src/server/worker-pools.ts), and now and then forget workers gone for a
 * day. Safe on any number of servers: each outcome is a compare-and-set,
 * and admission is serialized per team.
 */
export class LifecycleSweeper extends Periodic {
  private lastForget = 0;

  constructor(
    private readonly deps: ServerDeps,
    private readonly runs: RunService,
    intervalMs: number,
  ) {
    super(intervalMs);
  }

  /** One pass (tests call it directly). */
  async tick(): Promise<void> {
    try {
      const now = this.deps.clock.now();
      const outcomes = await this.deps.store.sweepExpiredLeases(now, now - sweepGraceMs(this.deps.leaseTtlMs));
      for (const o of outcomes) {
        this.deps.hub.publish(o.runId);
        this.deps.logger.warn({ runId: o.runId, from: o.from, to: o.to, reason: o.reason }, 'lease expired');
      }
      if (outcomes.some((o) => o.to === 'PENDING')) this.deps.hub.publishClaimable();
      // Lapsed idle holds (a worker gone with its idle sandboxes): nothing routes or counts by them any more.
      await this.deps.store.followups.clearLapsedIdle(now);
      for (const teamId of await this.deps.store.listTeamsWithQueuedRuns()) await this.runs.admit(teamId);
      await updateWaitingMessages(this.deps);
      if (now - this.lastForget >= FORGET_EVERY_MS) {
        this.lastForget = now;
        await forgetGoneWorkers(this.deps);
        // Old workspace snapshots of ended runs: a follow-up after that starts from the run's branch.
        await this.deps.store.followups.forgetWorkspaceSnapshots(now - followupSettings(this.deps).workspaceRetentionMs);
      }
    } catch (error) {
      this.deps.logger.error({ err: error }, 'lifecycle sweep failed');
    }
  }
}
