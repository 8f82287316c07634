import type { Problem } from '../api/problem.js';

/** An API error as the client sees it: the server's problem+json, or (status null) a transport failure. */
export class OzClientError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly problem: Problem | null,
  ) {
    super(message);
    this.name = 'OzClientError';
  }

  /** The catalog code (`error_code`), e.g. `resource_not_found`. */
  get code(): string | undefined {
    return this.problem?.code;
  }

  /** Whether the server said the request may be retried as it is. */
  get retryable(): boolean | undefined {
    return this.problem?.retryable;
  }

  /** What the catalog code leaves open: the rejected field, the condition (`stale_lease`, …). */
  get reason(): string | undefined {
    return this.problem?.reason;
  }
}
