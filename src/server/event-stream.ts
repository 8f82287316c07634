import type { ServerResponse } from 'node:http';
import { OzError } from '../core/errors.js';

/**
 * The two guards of the run event streams (docs/api.md "Event streams") that
 * are not the stream loop itself: how many streams a key and a team may hold
 * open at once, and a writer that honours the socket's backpressure.
 */

/**
 * Open-stream counts per API key and per team, in this server process. A
 * slot is taken synchronously after the check (no await between them), so
 * concurrent requests cannot overshoot.
 */
export class StreamSlots {
  private readonly byKey = new Map<string, number>();
  private readonly byTeam = new Map<string, number>();

  constructor(private readonly limits: { readonly maxPerKey: number; readonly maxPerTeam: number }) {}

  /** Take a slot for one stream, or throw a 429 naming the limit. Returns the (idempotent) release. */
  acquire(keyId: string, teamId: string): () => void {
    const perKey = this.byKey.get(keyId) ?? 0;
    if (perKey >= this.limits.maxPerKey) {
      throw tooMany('max_event_streams_per_key', 'this API key', perKey, this.limits.maxPerKey, 'OZ_EVENT_STREAMS_PER_KEY');
    }
    const perTeam = this.byTeam.get(teamId) ?? 0;
    if (perTeam >= this.limits.maxPerTeam) {
      throw tooMany('max_event_streams_per_team', 'your team', perTeam, this.limits.maxPerTeam, 'OZ_EVENT_STREAMS_PER_TEAM');
    }
    this.byKey.set(keyId, perKey + 1);
    this.byTeam.set(teamId, perTeam + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      decrement(this.byKey, keyId);
      decrement(this.byTeam, teamId);
    };
  }
}

function decrement(map: Map<string, number>, id: string): void {
  const n = (map.get(id) ?? 0) - 1;
  if (n <= 0) map.delete(id);
  else map.set(id, n);
}

function tooMany(reason: string, who: string, open: number, limit: number, setting: string): OzError {
  return new OzError(
    'budget_exceeded',
    `${reason}: ${who} already has ${open} open event streams, the most allowed is ${limit} (the server's ${setting}); close one, or wait for one to end, and retry`,
    { reason, status: 429, retryable: true },
  );
}

/**
 * Writes an SSE response without buffering more than the socket's high-water
 * mark: after a `write()` that returns false the caller awaits
 * {@link SseWriter.drained} before it reads or writes anything more. A client
 * that stays unwritable for `unwritableTimeoutMs` is given up on
 * ({@link SseWriter.stalled}) and its socket destroyed by {@link SseWriter.close}.
 */
export class SseWriter {
  /** The client read nothing for the whole unwritable timeout. */
  stalled = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly unwritableTimeoutMs: number,
    private readonly signal: AbortSignal,
  ) {}

  /** False when the chunk went over the high-water mark: await {@link drained} before writing more. */
  write(chunk: string): boolean {
    return this.res.write(chunk);
  }

  /**
   * Resolves true once the socket drained (at once when it needs no drain);
   * false when the client went away, the stream was aborted, or the client
   * stayed unwritable for the timeout (then {@link stalled} is set).
   */
  drained(): Promise<boolean> {
    const res = this.res;
    if (res.destroyed || this.signal.aborted) return Promise.resolve(false);
    if (!res.writableNeedDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        res.off('drain', onDrain);
        res.off('close', onGone);
        this.signal.removeEventListener('abort', onGone);
        resolve(ok);
      };
      const onDrain = (): void => finish(true);
      const onGone = (): void => finish(false);
      const timer = setTimeout(() => {
        this.stalled = true;
        finish(false);
      }, this.unwritableTimeoutMs);
      res.once('drain', onDrain);
      res.once('close', onGone);
      this.signal.addEventListener('abort', onGone, { once: true });
    });
  }

  /**
   * End the response. A stalled client's socket is destroyed (its buffered
   * bytes are dropped); otherwise the response ends normally, and is
   * destroyed if the client does not take its last bytes within the
   * unwritable timeout either.
   */
  close(): void {
    const res = this.res;
    if (res.destroyed) return;
    if (this.stalled) {
      res.destroy();
      return;
    }
    res.end();
    if (res.writableFinished) return;
    const timer = setTimeout(() => res.destroy(), this.unwritableTimeoutMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
    res.once('finish', () => clearTimeout(timer));
  }
}
