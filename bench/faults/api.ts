/**
 * The harness's API client: any of the deployment's servers, failing over to
 * the next one when a server is down (killed) or answers 5xx (its database
 * is restarting), until a deadline. Creates carry an Idempotency-Key, so a
 * retry of a request whose answer was lost never makes a second run.
 */

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export class Api {
  private next = 0;

  constructor(
    private readonly urls: readonly string[],
    private readonly key: string,
  ) {}

  /** One request, retried on other servers on a network error or a 5xx until `deadlineMs` from now; the last answer, or throws the last error. */
  async call(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; deadlineMs?: number } = {}): Promise<ApiAnswer & { tries: number }> {
    const deadline = Date.now() + (options.deadlineMs ?? 30_000);
    let tries = 0;
    let last: ApiAnswer | null = null;
    let lastError: unknown = null;
    for (;;) {
      const url = this.urls[this.next++ % this.urls.length] as string;
      tries++;
      try {
        const response = await fetch(`${url}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.key}`,
            ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(options.headers ?? {}),
          },
          ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
          signal: AbortSignal.timeout(5000),
        });
        const text = await response.text();
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // Not JSON: keep the text.
        }
        last = { status: response.status, body };
        if (response.status < 500) return { ...last, tries };
      } catch (error) {
        lastError = error;
      }
      if (Date.now() > deadline) {
        if (last) return { ...last, tries };
        throw lastError instanceof Error ? lastError : new Error(String(lastError));
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * tries)));
    }
  }
}
