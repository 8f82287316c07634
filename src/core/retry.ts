/**
 * Retry with exponential backoff and full jitter (delay drawn from
 * [0, min(maxMs, baseMs · 2^attempt)]), the shape AWS's architecture notes
 * measured as the least contended for many clients retrying at once.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number;
}

/** The delay before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Whether an error is worth another attempt; others are thrown at once. */
  retryable: (error: unknown) => boolean;
  /** Stops retrying (the last error is thrown). */
  signal?: AbortSignal;
}

/** Call `fn` until it succeeds, a non-retryable error, the attempts run out or `signal` aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt + 1 >= options.attempts || !options.retryable(error) || options.signal?.aborted) throw error;
      await sleep(backoffDelay(attempt, options), options.signal);
    }
  }
}
