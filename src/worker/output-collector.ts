import { StringDecoder } from 'node:string_decoder';
import type { WorkerEvent } from '../core/worker-protocol.js';
import { RedactingBuffer } from '../secrets/redacting-buffer.js';
import type { Redactor } from '../secrets/redactor.js';

/**
 * One run's output allowance, shared by its setup and harness output: past
 * `storedMax` bytes output is dropped (one `notice` says so); past `limit`
 * the run has printed too much and `onExceeded` ends it.
 */
export class OutputBudget {
  stored = 0;
  total = 0;
  truncated = false;
  private exceeded = false;

  constructor(
    readonly storedMax: number,
    readonly limit: number,
    private readonly onExceeded: () => void,
  ) {}

  count(bytes: number): void {
    this.total += bytes;
    if (this.total > this.limit && !this.exceeded) {
      this.exceeded = true;
      this.onExceeded();
    }
  }
}

/**
 * Turns a process's output chunks into `output` events: UTF-8 safe across
 * chunk boundaries, redacted before anything is split (a value never leaves
 * as two halves, whatever the event size), line-buffered per stream (a line
 * is split across events only when it alone exceeds the event size), within
 * the run's {@link OutputBudget}.
 */
export class OutputCollector {
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly buffers: Record<'stdout' | 'stderr', RedactingBuffer>;
  /** Redacted text not yet sent, per stream (whole lines only, unless a line is too long). */
  private readonly ready = { stdout: '', stderr: '' };

  constructor(
    private readonly emit: (event: WorkerEvent) => void,
    private readonly budget: OutputBudget,
    redactor: Redactor,
    private readonly phase: 'setup' | 'harness' = 'harness',
    private readonly maxEventChars = 16 * 1024,
  ) {
    this.buffers = { stdout: new RedactingBuffer(redactor, maxEventChars), stderr: new RedactingBuffer(redactor, maxEventChars) };
  }

  push(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const budget = this.budget;
    budget.count(chunk.length);
    if (budget.truncated) return;
    if (budget.stored + chunk.length > budget.storedMax) {
      const room = Math.max(0, budget.storedMax - budget.stored);
      budget.stored = budget.storedMax;
      if (room > 0) this.take(stream, chunk.subarray(0, room));
      // Cut mid-stream: what is safe goes out; the last characters of the unfinished
      // line, which may be a value's prefix, are dropped unseen.
      for (const s of ['stdout', 'stderr'] as const) {
        this.ready[s] += this.buffers[s].releaseSafe();
        this.buffers[s].discard();
        this.send(s, true);
      }
      budget.truncated = true;
      this.emit({
        type: 'notice',
        at: Date.now(),
        data: { level: 'warn', message: `Output truncated: this run printed more than ${budget.storedMax} bytes.`, reason: 'output_truncated' },
      });
      return;
    }
    budget.stored += chunk.length;
    this.take(stream, chunk);
  }

  private take(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    this.ready[stream] += this.buffers[stream].write(this.decoders[stream].write(chunk));
    this.send(stream, false);
  }

  /** Emit the ready text in events of at most `maxEventChars`; the last partial piece waits unless `all`. */
  private send(stream: 'stdout' | 'stderr', all: boolean): void {
    let text = this.ready[stream];
    while (text.length >= this.maxEventChars || (all && text.length > 0)) {
      this.emit({ type: 'output', at: Date.now(), data: { stream, phase: this.phase, text: text.slice(0, this.maxEventChars) } });
      text = text.slice(this.maxEventChars);
    }
    // Whole lines go out at once; a piece of a long line waits for more.
    if (text.length > 0 && text.endsWith('\n')) {
      this.emit({ type: 'output', at: Date.now(), data: { stream, phase: this.phase, text } });
      text = '';
    }
    this.ready[stream] = text;
  }

  /**
   * Emit what may go now, mid-stream (before a conversation event, so output
   * so far comes first): never the last characters of an unfinished line that
   * could still turn out to be the start of a secret's value.
   */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      this.ready[stream] += this.buffers[stream].releaseSafe();
      this.send(stream, true);
    }
  }

  /** The process ended: emit everything, redacted. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      this.ready[stream] += this.buffers[stream].write(this.decoders[stream].end()) + this.buffers[stream].end();
      this.send(stream, true);
    }
  }
}
