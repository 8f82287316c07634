/**
 * In-process wake-ups for run event readers (SSE streams): whoever appends
 * events or changes a run's state calls {@link EventHub.publish}; readers wait
 * on {@link EventHub.wait} and then read the store. The store stays the source
 * of truth — a wake-up carries no data — so a missed or duplicate wake-up only
 * costs a read. Readers also wake on a timeout, which covers writers in other
 * processes until PostgreSQL LISTEN/NOTIFY is wired in.
 */
/** The wake-up key of claim long-polls (run ids are UUIDs, so it cannot collide). */
const CLAIMABLE = '*claimable';

export class EventHub {
  private readonly waiters = new Map<string, Set<() => void>>();

  publish(runId: string): void {
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
