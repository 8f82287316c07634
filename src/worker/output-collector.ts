import { StringDecoder } from 'node:string_decoder';
import type { WorkerEvent } from '../core/worker-protocol.js';

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
 * Turns a process's output chunks into `output` events: line-buffered per
 * stream (a line is never split across events unless it alone exceeds the
 * event size), UTF-8 safe across chunk boundaries, within the run's
 * {@link OutputBudget}.
 */
export class OutputCollector {
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial = { stdout: '', stderr: '' };

  constructor(
    private readonly emit: (event: WorkerEvent) => void,
    private readonly budget: OutputBudget,
    private readonly phase: 'setup' | 'harness' = 'harness',
    private readonly maxEventChars = 16 * 1024,
  ) {}

  push(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const budget = this.budget;
    budget.count(chunk.length);
    if (budget.truncated) return;
    if (budget.stored + chunk.length > budget.storedMax) {
      const room = Math.max(0, budget.storedMax - budget.stored);
      budget.stored = budget.storedMax;
      if (room > 0) this.take(stream, chunk.subarray(0, room));
      this.flush();
      budget.truncated = true;
      this.emit({ type: 'notice', at: Date.now(), data: { level: 'warn', message: `Output truncated: this run printed more than ${budget.storedMax} bytes.`, reason: 'output_truncated' } });
      return;
    }
    budget.stored += chunk.length;
    this.take(stream, chunk);
  }

  private take(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    let text = this.partial[stream] + this.decoders[stream].write(chunk);
    const lastNewline = text.lastIndexOf('\n');
    if (lastNewline < 0 && text.length < this.maxEventChars) {
      this.partial[stream] = text;
      return;
    }
    const complete = lastNewline < 0 ? text : text.slice(0, lastNewline + 1);
    this.partial[stream] = lastNewline < 0 ? '' : text.slice(lastNewline + 1);
    for (text = complete; text.length > 0; text = text.slice(this.maxEventChars)) {
      this.emit({ type: 'output', at: Date.now(), data: { stream, phase: this.phase, text: text.slice(0, this.maxEventChars) } });
    }
  }

  /** Emit what is buffered (end of the process, or a periodic flush of a long line). */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      this.partial[stream] = '';
      if (rest.length > 0) this.emit({ type: 'output', at: Date.now(), data: { stream, phase: this.phase, text: rest } });
    }
  }
}
