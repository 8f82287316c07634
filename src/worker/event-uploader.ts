import type { WorkerEvent } from '../core/worker-protocol.js';
import type { Redactor } from '../secrets/redactor.js';
import { eventBytes, fitEvent } from './event-fitting.js';
import { ProtocolError, type ProtocolClient } from './protocol-client.js';

export interface EventUploaderOptions {
  /** A batch's body stays under this many bytes (the server accepts 4 MiB; default 512 KiB). */
  maxBatchBytes?: number;
  /** At most this many events per batch (the protocol's maximum is 1000). */
  maxBatchEvents?: number;
  flushDelayMs?: number;
}

export interface EventUploaderHooks {
  /** The lease is gone (409): the run is no longer ours. */
  onStale: () => void;
  /** Events could not be delivered (a refusal, or the server unreachable past every retry): the run must end. */
  onFailure: (error: Error) => void;
}

/**
 * Sends a run's events in numbered batches, in order, one batch in flight.
 * Every event is redacted (the run's secret values masked) on the way in,
 * and made to fit a batch (long output split, oversized fields shortened).
 * Batches are capped by serialized size, well under the server's body limit,
 * so no amount of output makes a batch the server refuses.
 *
 * A batch that fails transiently is retried with the SAME number, so the
 * server appends it once however often it arrives. A stale lease (409) stops
 * the uploader and reports it. Any other failure ends the uploader and is
 * reported through `onFailure` — never thrown where nobody awaits it: one
 * run's upload problem must end that run, not the worker process.
 */
export class EventUploader {
  /** Events waiting, each with its serialized size (measured once). */
  private queue: { event: WorkerEvent; bytes: number }[] = [];
  private queuedBytes = 0;
  private batchNo = 0;
  private sending: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failure: Error | null = null;
  private readonly maxBatchBytes: number;
  private readonly maxBatchEvents: number;
  private readonly flushDelayMs: number;

  constructor(
    private readonly client: ProtocolClient,
    private readonly runId: string,
    private readonly leaseToken: string,
    private readonly hooks: EventUploaderHooks,
    /** Masks the run's secret values in every event before it leaves the worker. */
    private readonly redactor: Redactor,
    options: EventUploaderOptions = {},
  ) {
    this.maxBatchBytes = options.maxBatchBytes ?? 512 * 1024;
    this.maxBatchEvents = Math.min(1000, options.maxBatchEvents ?? 1000);
    this.flushDelayMs = options.flushDelayMs ?? 100;
  }

  add(event: WorkerEvent): void {
    if (this.stopped) return;
    // Room for the batch's envelope (lease token, batch number).
    for (const piece of fitEvent({ ...event, data: this.redactor.redactDeep(event.data) }, this.maxBatchBytes - 1024)) {
      const bytes = eventBytes(piece) + 1;
      this.queue.push({ event: piece, bytes });
      this.queuedBytes += bytes;
    }
    if (this.queue.length >= this.maxBatchEvents || this.queuedBytes >= this.maxBatchBytes) this.flushInBackground();
    else this.timer ??= setTimeout(() => this.flushInBackground(), this.flushDelayMs);
  }

  private flushInBackground(): void {
    this.flush().catch(() => {
      // Reported through onFailure by fail(); nothing else to do here.
    });
  }

  /**
   * Send everything queued so far; resolves when the server has it (or the
   * lease is lost), rejects when the events could not be delivered.
   */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.sending) await this.sending.catch(() => {});
    if (this.failure) throw this.failure;
    if (this.queue.length === 0 || this.stopped) return;
    const events = this.takeBatch();
    this.batchNo += 1;
    this.sending = this.send(this.batchNo, events).finally(() => (this.sending = null));
    await this.sending;
    if (this.queue.length > 0) await this.flush();
  }

  /** The oldest events that fit one batch by count and serialized size (at least one). */
  private takeBatch(): WorkerEvent[] {
    let bytes = 0;
    let count = 0;
    for (const { bytes: size } of this.queue) {
      if (count > 0 && (count >= this.maxBatchEvents || bytes + size > this.maxBatchBytes - 1024)) break;
      bytes += size;
      count += 1;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count).map((queued) => queued.event);
  }

  private async send(batchNo: number, events: WorkerEvent[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.events(this.runId, { lease_token: this.leaseToken, batch_no: batchNo, events });
        return;
      } catch (error) {
        if (error instanceof ProtocolError && error.stale) {
          this.stop();
          this.queue = [];
          this.hooks.onStale();
          return;
        }
        if (attempt >= 20 || !(error instanceof ProtocolError && error.transient)) throw this.fail(error);
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private fail(error: unknown): Error {
    if (!this.failure) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      this.stop();
      this.queue = [];
      this.hooks.onFailure(this.failure);
    }
    return this.failure;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
