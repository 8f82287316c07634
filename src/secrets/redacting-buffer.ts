import type { Redactor } from './redactor.js';

/**
 * Redaction for text that arrives in pieces and leaves in pieces (process
 * output, a stderr tail): text is released only in redacted form and never
 * cut inside a secret's value, so no split, event boundary or tail can show a
 * value as two unrecognised halves.
 *
 * Complete lines are released at once (the redactor sees whole lines, which
 * is what it matches). A line longer than `maxPendingChars` is released in
 * parts, each cut at least `longestForm - 1` characters before the end of
 * what is held and never inside a match, so whatever follows can still
 * complete a value that started in the held tail.
 */
export class RedactingBuffer {
  private pending = '';

  constructor(
    private readonly redactor: Redactor,
    private readonly maxPendingChars = 16 * 1024,
  ) {}

  /** Add text; returns the redacted text that may be released now (maybe empty). */
  write(text: string): string {
    this.pending += text;
    const newline = this.pending.lastIndexOf('\n');
    let out = '';
    if (newline >= 0) {
      out = this.redactor.redact(this.pending.slice(0, newline + 1));
      this.pending = this.pending.slice(newline + 1);
    }
    if (this.pending.length > this.maxPendingChars) {
      const keep = Math.max(0, this.redactor.longestForm - 1);
      const cut = this.redactor.safeCut(this.pending, this.pending.length - keep);
      out += this.redactor.redact(this.pending.slice(0, cut));
      this.pending = this.pending.slice(cut);
    }
    return out;
  }

  /**
   * Release what can go now without waiting for the line to end: all but the
   * last `longestForm - 1` characters, never cut inside a value (a flush for
   * ordering, mid-stream: what follows may still complete a value).
   */
  releaseSafe(): string {
    const keep = Math.max(0, this.redactor.longestForm - 1);
    if (this.pending.length <= keep) return '';
    const cut = this.redactor.safeCut(this.pending, this.pending.length - keep);
    const out = this.redactor.redact(this.pending.slice(0, cut));
    this.pending = this.pending.slice(cut);
    return out;
  }

  /** Drop what is held (a stream cut off mid-line: its unfinished tail may be a value's prefix). */
  discard(): void {
    this.pending = '';
  }

  /** Whatever is held, redacted (end of the stream). */
  end(): string {
    const rest = this.peek();
    this.pending = '';
    return rest;
  }

  /** What is held, redacted, without releasing it. */
  peek(): string {
    return this.redactor.redact(this.pending);
  }
}

/**
 * The last `maxChars` of a stream, redacted before it is cut (status
 * messages quote the tail of a failed step's output).
 */
export class RedactedTail {
  private readonly buffer: RedactingBuffer;
  private text = '';

  constructor(
    redactor: Redactor,
    private readonly maxChars = 2000,
  ) {
    this.buffer = new RedactingBuffer(redactor, Math.max(4096, maxChars));
  }

  push(chunk: string): void {
    this.text = (this.text + this.buffer.write(chunk)).slice(-this.maxChars);
  }

  toString(): string {
    return (this.text + this.buffer.peek()).slice(-this.maxChars).trimEnd();
  }
}
