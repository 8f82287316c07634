/**
 * What a tool hands back to the model from a process's output: the start and
 * the end, with a note of what was left out between, so a 10 GB print costs
 * the worker (and the model's context) a fixed amount.
 */
export class OutputCapture {
  private head = '';
  private tail = '';
  private total = 0;

  constructor(private readonly keep: number = 15_000) {}

  push(chunk: Buffer | string): void {
    const text = chunk.toString();
    this.total += text.length;
    if (this.head.length < this.keep) {
      const room = this.keep - this.head.length;
      this.head += text.slice(0, room);
      if (text.length <= room) return;
      this.tail = (this.tail + text.slice(room)).slice(-this.keep);
      return;
    }
    this.tail = (this.tail + text).slice(-this.keep);
  }

  /** Whether anything was left out. */
  get truncated(): boolean {
    return this.total > this.head.length + this.tail.length;
  }

  text(): string {
    if (!this.truncated) return this.head + this.tail;
    const omitted = this.total - this.head.length - this.tail.length;
    return `${this.head}\n[… ${omitted} characters omitted …]\n${this.tail}`;
  }
}
