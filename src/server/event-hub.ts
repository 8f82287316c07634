import type { WakeupBus } from '../store/store.js';
import { WAKE_EVERY_WAITER } from '../store/wakeups.js';

/**
 * In-process wake-ups for run event readers (SSE streams): whoever appends
 * events or changes a run's state calls {@link EventHub.publish}; readers wait
 * on {@link EventHub.wait} and then read the store. The store stays the source
 * of truth — a wake-up carries no data — so a missed or duplicate wake-up only
 * costs a read. Across servers the wake-ups travel over the store's bus
 * (PostgreSQL LISTEN/NOTIFY); readers also wake on a timeout, in case one is lost.
 */
/** The wake-up key of claim long-polls (run ids are UUIDs, so it cannot collide). */
const CLAIMABLE = '*claimable';

export class EventHub {
  private readonly waiters = new Map<string, Set<() => void>>();
  private unsubscribe: (() => void) | null = null;

  /** With a bus (PostgreSQL LISTEN/NOTIFY), wake-ups also reach every other server. */
  constructor(private readonly bus: WakeupBus | null = null) {}

  /** Start receiving other servers' wake-ups. */
  async connect(): Promise<void> {
    if (this.bus && !this.unsubscribe) this.unsubscribe = await this.bus.subscribe((key) => this.wakeLocal(key));
  }

  disconnect(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  publish(runId: string): void {
    this.wakeLocal(runId);
    this.bus?.notify(runId);
  }

  private wakeLocal(runId: string): void {
    // The bus lost wake-ups (its LISTEN connection was re-made): everyone re-reads.
    if (runId === WAKE_EVERY_WAITER) {
      for (const key of [...this.waiters.keys()]) this.wakeLocal(key);
      return;
    }
    const set = this.waiters.get(runId);
    if (!set) return;
    this.waiters.delete(runId);
    for (const wake of set) wake();
  }

  /** Resolves on the next publish for `runId`, after `timeoutMs`, or when `signal` aborts. */
  wait(runId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(runId);
      if (!set) {
        set = new Set();
        this.waiters.set(runId, set);
      }
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const current = this.waiters.get(runId);
        current?.delete(done);
        if (current && current.size === 0) this.waiters.delete(runId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  /** A run became claimable (admitted or re-queued): wake claim long-polls. */
  publishClaimable(): void {
    this.publish(CLAIMABLE);
  }

  waitClaimable(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.wait(CLAIMABLE, timeoutMs, signal);
  }

  /** Number of runs with waiting readers (tests check nothing leaks). */
  get watchedRuns(): number {
    return this.waiters.size;
  }
}
