/**
 * What a tool hands back to the model from a process's output: the start and
 * the end, with a note of what was left out between, so a 10 GB print costs
 * the worker (and the model's context) a fixed amount.
 *
 * Secrets must be redacted before the cut, not after: a secret straddling a
 * cut would leave a fragment no redactor recognizes. So each end keeps
 * `MARGIN` characters more than it shows, is redacted whole, and then loses
 * the margin on its cut side, where such a fragment could only be.
 */
const MARGIN = 4096;

export class OutputCapture {
  private head = '';
  private tail = '';
  private total = 0;
  private readonly room: number;

  constructor(private readonly keep: number = 15_000) {
    this.room = keep + MARGIN;
  }

  push(chunk: Buffer | string): void {
    const text = chunk.toString();
    this.total += text.length;
    if (this.head.length < this.room) {
      const free = this.room - this.head.length;
      this.head += text.slice(0, free);
      if (text.length <= free) return;
      this.tail = (this.tail + text.slice(free)).slice(-this.room);
      return;
    }
    this.tail = (this.tail + text).slice(-this.room);
  }

  /** Whether anything was left out. */
  get truncated(): boolean {
    return this.total > this.head.length + this.tail.length;
  }

  /** The output, redacted by `redact` before it is cut. */
  text(redact: (text: string) => string = (text) => text): string {
    if (!this.truncated) return redact(this.head + this.tail);
    const head = redact(this.head).slice(0, -MARGIN);
    const tail = redact(this.tail).slice(MARGIN);
    const omitted = this.total - this.keep * 2;
    return `${head}\n[… about ${omitted} characters omitted …]\n${tail}`;
  }
}
