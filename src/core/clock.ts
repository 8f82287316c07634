/** Time source, injected so tests can drive hours in milliseconds. Epoch milliseconds. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to (tests, benchmarks). */
export class ManualClock implements Clock {
  constructor(private current: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): number {
    this.current += ms;
    return this.current;
  }
  set(ms: number): void {
    this.current = ms;
  }
}

/** RFC 3339 with milliseconds, UTC: the API's timestamp format. */
export function toRfc3339(ms: number): string {
  return new Date(ms).toISOString();
}
