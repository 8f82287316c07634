import type { WorkerEvent } from '../core/worker-protocol.js';
import type { Redactor } from '../secrets/redactor.js';
import { ProtocolError, type ProtocolClient } from './protocol-client.js';

/**
 * Sends a run's events in numbered batches, in order, one batch in flight.
 * Every event is redacted (the run's secret values masked) on the way in.
 * A batch that fails transiently is retried with the SAME number, so the
 * server appends it once however often it arrives. A stale lease (409) stops
 * the uploader and reports it: the run is no longer ours.
 */
export class EventUploader {
  private queue: WorkerEvent[] = [];
  private batchNo = 0;
  private sending: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly client: ProtocolClient,
    private readonly runId: string,
    private readonly leaseToken: string,
    private readonly onStale: () => void,
    /** Masks the run's secret values in every event before it leaves the worker. */
    private readonly redactor: Redactor,
    private readonly flushDelayMs = 100,
  ) {}

  add(event: WorkerEvent): void {
    if (this.stopped) return;
    this.queue.push({ ...event, data: this.redactor.redactDeep(event.data) });
    if (this.queue.length >= 200) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.flushDelayMs);
  }

  /** Send everything queued so far; resolves when the server has it (or the lease is lost). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.sending) await this.sending;
    if (this.queue.length === 0 || this.stopped) return;
    const events = this.queue.splice(0, 1000);
    this.batchNo += 1;
    const batchNo = this.batchNo;
    this.sending = this.send(batchNo, events).finally(() => (this.sending = null));
    await this.sending;
    if (this.queue.length > 0) await this.flush();
  }

  private async send(batchNo: number, events: WorkerEvent[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.events(this.runId, { lease_token: this.leaseToken, batch_no: batchNo, events });
        return;
      } catch (error) {
        if (error instanceof ProtocolError && error.stale) {
          this.stopped = true;
          this.queue = [];
          this.onStale();
          return;
        }
        if (attempt >= 20 || !(error instanceof ProtocolError && error.transient)) throw error;
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
