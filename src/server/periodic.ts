/**
 * A background loop of the server (lifecycle sweeper, scheduler): `tick()`
 * every `intervalMs` on a timer that never keeps the process alive, never
 * overlapping itself; `stop()` waits for the pass in flight. Tests call
 * `tick()` directly.
 */
export abstract class Periodic {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly intervalMs: number) {}

  /** One pass; it handles its own errors (a failing pass must not stop the loop). */
  abstract tick(): Promise<void>;

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.tick().finally(() => (this.running = null));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
