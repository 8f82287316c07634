import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { sleep } from '../core/retry.js';
import { ProtocolError, type ProtocolClient } from './protocol-client.js';
import type { ClaimedFollowup } from '../core/worker-protocol.js';

export interface LeaseKeeperHooks {
  /** A cancel was requested (heartbeat or control long-poll). */
  onCancel(): void;
  /** The lease is lost (409) or could not be renewed in time: stop the run, write nothing more. */
  onFenced(why: 'lost' | 'unrenewable'): void;
  /** The lease was renewed: the run may go on for `validForMs` from now (the sandbox's own fence). */
  onRenewed(validForMs: number): void;
  /** Follow-ups arrived for the running agent (after the last one the keeper was told of: `followupsAfter`). */
  onFollowups?(followups: ClaimedFollowup[]): void;
}

export interface LeaseKeeperOptions {
  leaseTtlMs: number;
  /** When the claim's answer arrived (monotonic ms, `performance.now()`); the first heartbeat goes at once. */
  claimedAt: number;
  /** What the server said was left of the lease when it answered (`lease_valid_for_ms`); default the whole TTL. */
  validAtClaimMs?: number;
  /** Control long-poll wait (the server caps it at 30 s). */
  controlWaitMs?: number;
  /** Monotonic clock; injectable for tests. */
  now?: () => number;
  /** The last follow-up the run already has (its claim's): the control poll also waits for later ones. Absent: cancels only. */
  followupsAfter?: number;
}

/**
 * Keeps one run's lease (cf. BullMQ's lock manager): a heartbeat at once, then every ttl/6,
 * a control long-poll for cancel requests, and self-fencing. Every time is
 * measured on the monotonic clock from when a request was SENT, so the lease
 * this worker believes in never outlasts the server's: the server computed
 * its expiry from a later moment.
 *
 * Self-fencing: when the lease has less than `margin` left and could not be
 * renewed, the keeper fences the run (`onFenced`) before the lease expires,
 * so the sweeper never resolves a run this worker still executes. That needs
 * this process to be scheduled; the sandbox's own fence (renewed through
 * `onRenewed`) covers a worker that is frozen.
 */
export class LeaseKeeper {
  private readonly done = new AbortController();
  private deadline: number;
  private loops: Promise<void>[] = [];
  private readonly now: () => number;
  readonly intervalMs: number;
  readonly marginMs: number;

  constructor(
    private readonly client: ProtocolClient,
    private readonly runId: string,
    private readonly leaseToken: string,
    private readonly options: LeaseKeeperOptions,
    private readonly hooks: LeaseKeeperHooks,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.intervalMs = Math.max(500, Math.floor(options.leaseTtlMs / 6));
    this.marginMs = Math.min(5000, this.intervalMs);
    this.deadline = options.claimedAt + Math.min(options.leaseTtlMs, options.validAtClaimMs ?? options.leaseTtlMs);
  }

  /** How long the run may still go on without another renewal (ms, may be negative). */
  get validForMs(): number {
    return this.deadline - this.marginMs - this.now();
  }

  start(): void {
    if (this.loops.length > 0) return;
    this.loops = [this.heartbeatLoop(), this.controlLoop()];
  }

  async stop(): Promise<void> {
    this.done.abort();
    await Promise.allSettled(this.loops);
  }

  private fence(why: 'lost' | 'unrenewable'): void {
    if (this.done.signal.aborted) return;
    this.logger.warn({ runId: this.runId }, why === 'lost' ? 'lease lost; stopping the run' : 'cannot renew the lease; stopping the run before it expires');
    this.done.abort();
    this.hooks.onFenced(why);
  }

  private async heartbeatLoop(): Promise<void> {
    const signal = this.done.signal;
    for (let beat = 0; !signal.aborted; beat++) {
      // The first beat at once (it bounds the lease from a send time); then
      // wake early enough to fence within the margin even when a beat fails.
      await sleep(beat === 0 ? 0 : Math.max(0, Math.min(this.intervalMs, this.validForMs)), signal);
      if (signal.aborted) return;
      if (this.validForMs <= 0) return this.fence('unrenewable');
      const sentAt = this.now();
      try {
        const beat = await this.client.heartbeat(this.runId, this.leaseToken, AbortSignal.timeout(Math.max(100, Math.floor(this.validForMs))));
        // Stopped or fenced meanwhile: a late answer renews nothing.
        if (signal.aborted) return;
        this.deadline = Math.max(this.deadline, sentAt + this.options.leaseTtlMs);
        this.hooks.onRenewed(this.validForMs);
        if (beat.cancel_requested) this.hooks.onCancel();
      } catch (error) {
        if (error instanceof ProtocolError && error.stale) return this.fence('lost');
        // Transient: try again at the next beat, or fence when time is up.
      }
      if (this.validForMs <= 0) return this.fence('unrenewable');
    }
  }

  private async controlLoop(): Promise<void> {
    const signal = this.done.signal;
    let after = this.options.followupsAfter;
    while (!signal.aborted) {
      try {
        const control = await this.client.control(this.runId, this.leaseToken, this.options.controlWaitMs ?? 25_000, signal, after);
        const followups = (control.followups ?? []).filter((f) => after === undefined || f.seq > after);
        const last = followups[followups.length - 1];
        if (last && after !== undefined) {
          after = last.seq;
          this.hooks.onFollowups?.(followups);
        }
        if (control.cancel_requested) {
          this.hooks.onCancel();
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ProtocolError && error.stale) return this.fence('lost');
        await sleep(1000, signal);
      }
    }
  }
}
