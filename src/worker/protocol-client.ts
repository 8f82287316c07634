import { parseProblem, type Problem } from '../api/problem.js';
import {
  WORKER_API,
  type ClaimRequest,
  type ClaimResponse,
  type ControlResponse,
  type DiffsRequest,
  type EventBatchRequest,
  type EventBatchResponse,
  type FinishRequest,
  type FinishResponse,
  type HeartbeatResponse,
  type HistoryResponse,
  type IdleRequest,
  type IdleResponse,
  type StartResponse,
} from '../core/worker-protocol.js';

/** A protocol call the server refused (its problem+json, when it sent one): `stale` when our lease is gone (409). */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly reason: string | null,
    readonly problem: Problem | null = null,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }

  /** The catalog code (`error_code`) the server answered with. */
  get code(): string | undefined {
    return this.problem?.code;
  }

  /** Whether the server said the call may be retried. */
  get retryable(): boolean | undefined {
    return this.problem?.retryable;
  }

  get stale(): boolean {
    return this.status === 409 || this.status === 404;
  }

  /** Network failures and 5xx are worth retrying; 4xx are not. */
  get transient(): boolean {
    return this.status === null || this.status >= 500;
  }
}

/**
 * The worker's HTTP client for the worker protocol (src/core/worker-protocol.ts).
 * Given several server URLs (servers of one deployment), a call that cannot
 * reach one moves on to the next for the calls after it: the protocol is
 * idempotent, and every server reads the same database.
 */
export class ProtocolClient {
  private readonly bases: string[];
  private current = 0;

  constructor(
    serverUrls: string | readonly string[],
    private readonly token: string,
  ) {
    const urls = typeof serverUrls === 'string' ? [serverUrls] : [...serverUrls];
    if (urls.length === 0) throw new Error('ProtocolClient: no server URL');
    this.bases = urls.map((url) => `${url.replace(/\/+$/, '')}${WORKER_API}`);
  }

  private async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, signal?: AbortSignal, binary = false): Promise<T> {
    let response: Response;
    const index = this.current;
    const raw = Buffer.isBuffer(body);
    try {
      response = await fetch(`${this.bases[index] as string}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }),
        },
        ...(body === undefined ? {} : { body: raw ? body : JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (!signal?.aborted && this.current === index) this.current = (index + 1) % this.bases.length;
      throw new ProtocolError(`cannot reach the server: ${(error as Error).message}`, null, null);
    }
    if (binary && response.ok) {
      try {
        return Buffer.from(await response.arrayBuffer()) as T;
      } catch (error) {
        throw new ProtocolError(`the server's answer was cut off: ${(error as Error).message}`, null, null);
      }
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      // The connection broke while the answer was read: as transient as not reaching the server.
      throw new ProtocolError(`the server's answer was cut off: ${(error as Error).message}`, null, null);
    }
    if (!response.ok) {
      const problem = parseProblem(response.status, text);
      throw new ProtocolError(problem.detail ?? `HTTP ${response.status}`, response.status, problem.reason ?? null, problem);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  claim(request: ClaimRequest, signal?: AbortSignal): Promise<ClaimResponse> {
    return this.call('POST', '/claim', request, signal);
  }
  start(runId: string, leaseToken: string): Promise<StartResponse> {
    return this.call('POST', `/runs/${runId}/start`, { lease_token: leaseToken });
  }
  heartbeat(runId: string, leaseToken: string, signal?: AbortSignal): Promise<HeartbeatResponse> {
    return this.call('POST', `/runs/${runId}/heartbeat`, { lease_token: leaseToken }, signal);
  }
  control(runId: string, leaseToken: string, waitMs: number, signal?: AbortSignal, afterFollowup?: number): Promise<ControlResponse> {
    const q = new URLSearchParams({ lease_token: leaseToken, wait_ms: String(waitMs), ...(afterFollowup !== undefined ? { after: String(afterFollowup) } : {}) });
    return this.call('GET', `/runs/${runId}/control?${q.toString()}`, undefined, signal);
  }
  events(runId: string, request: EventBatchRequest): Promise<EventBatchResponse> {
    return this.call('POST', `/runs/${runId}/events`, request);
  }
  finish(runId: string, request: FinishRequest): Promise<FinishResponse> {
    return this.call('POST', `/runs/${runId}/finish`, request);
  }
  followupsDelivered(runId: string, leaseToken: string, through: number): Promise<void> {
    return this.call('POST', `/runs/${runId}/followups/delivered`, { lease_token: leaseToken, through });
  }
  history(runId: string, leaseToken: string): Promise<HistoryResponse> {
    return this.call('GET', `/runs/${runId}/history?${new URLSearchParams({ lease_token: leaseToken }).toString()}`);
  }
  putWorkspace(runId: string, leaseToken: string, tar: Buffer, heads: readonly string[]): Promise<void> {
    return this.call('PUT', `/runs/${runId}/workspace?${new URLSearchParams({ lease_token: leaseToken, heads: heads.join(',') }).toString()}`, tar);
  }
  getWorkspace(runId: string, leaseToken: string, signal?: AbortSignal): Promise<Buffer> {
    return this.call('GET', `/runs/${runId}/workspace?${new URLSearchParams({ lease_token: leaseToken }).toString()}`, undefined, signal, true);
  }
  putDiffs(runId: string, leaseToken: string, diffs: DiffsRequest['diffs']): Promise<void> {
    return this.call('POST', `/runs/${runId}/diffs`, { lease_token: leaseToken, diffs });
  }
  releaseIdle(runId: string, leaseToken: string): Promise<void> {
    return this.call('POST', `/runs/${runId}/idle/release`, { lease_token: leaseToken });
  }
  idle(request: IdleRequest): Promise<IdleResponse> {
    return this.call('POST', '/idle', request);
  }
}
