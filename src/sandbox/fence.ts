import { RunFailure } from '../core/run-failure.js';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processStart, type Leftovers, type ReapTarget } from './reap.js';
import type { WatchdogEvent, WatchdogRequest } from './watchdog-protocol.js';

/**
 * Where the built watchdog lives in `dist/` (beside this module once built;
 * from the sources, as the fast tests run them, the built copy in `dist/`).
 */
export const DEFAULT_WATCHDOG_SCRIPT = fileURLToPath(
  import.meta.url.endsWith('.ts') ? new URL('../../dist/sandbox/watchdog.js', import.meta.url) : new URL('./watchdog.js', import.meta.url),
);

/** What a lapsed fence makes of every request to its sandbox. */
export const FENCE_LAPSED = 'its fence lapsed (not renewed in time)';

/** A request to a sandbox whose fence lapsed: the sandbox is gone (the run's lease, too, most likely). */
export class FenceLapsedError extends RunFailure {
  constructor() {
    super({ state: 'ERROR', code: 'resource_unavailable', reason: 'sandbox_lost', message: `The sandbox ended unexpectedly: ${FENCE_LAPSED}`, retryable: true });
  }
}

/** CLOCK_MONOTONIC in ms: the clock the watchdog compares deadlines with (never steps with the wall clock). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

interface Entry {
  target: { uid?: number; cgroups: string[]; processes: { pid: number; start: number }[]; groups: number[] };
  leftovers: Leftovers;
  deadline: number | null;
  onFenced: () => void;
}

/**
 * The worker's side of the fence watchdog (src/sandbox/watchdog.ts): one
 * process per backend, in its own session, that kills a sandbox whose
 * deadline passed and every sandbox (with what it left) when the worker dies.
 * If the watchdog itself dies, it is started again and told everything anew.
 */
export class Watchdog {
  private child: ChildProcess | null = null;
  private readonly entries = new Map<string, Entry>();
  private readonly owned: string[] = [];
  private closed = false;

  private constructor(
    private readonly script: string,
    private readonly onError: (message: string) => void,
  ) {}

  /** Start the watchdog and wait until it runs. */
  static async start(options: { script?: string; onError?: (message: string) => void } = {}): Promise<Watchdog> {
    const watchdog = new Watchdog(options.script ?? DEFAULT_WATCHDOG_SCRIPT, options.onError ?? (() => {}));
    await watchdog.launch();
    return watchdog;
  }

  /** The watchdog's pid (for tests and logs). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private launch(): Promise<void> {
    // Its own session (detached): a signal to the worker's process group, a
    // SIGSTOP included, does not reach it. Nothing of the worker's environment.
    const child = spawn(process.execPath, [this.script], { detached: true, stdio: ['pipe', 'pipe', 'ignore'], env: {}, cwd: '/' });
    this.child = child;
    const ready = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`the fence watchdog exited at start (${signal ?? `code ${code}`})`)));
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        let event: WatchdogEvent;
        try {
          event = JSON.parse(line) as WatchdogEvent;
        } catch {
          return;
        }
        if (event.ev === 'ready') resolve();
        else if (event.ev === 'fenced') this.entries.get(event.id)?.onFenced();
        else this.onError(`fence watchdog: ${event.message}`);
      });
    });
    ready.catch(() => {});
    child.stdin?.on('error', () => {});
    child.on('exit', () => {
      if (this.closed || this.child !== child) return;
      this.onError('the fence watchdog exited; starting it again');
      // Not in a tight loop if it dies at once every time.
      const relaunch = setTimeout(() => void this.launch().catch((error: Error) => this.onError(`the fence watchdog cannot start again: ${error.message}`)), 200);
      relaunch.unref();
    });
    // Once it runs, the worker's own exit is never held up by it.
    ready.then(
      () => {
        child.unref();
        (child.stdin as Socket | null)?.unref();
        (child.stdout as Socket | null)?.unref();
      },
      () => {}, // reported to the caller of launch()
    );
    // A new watchdog learns everything the old one knew.
    if (this.owned.length > 0) this.send({ op: 'owns', dirs: this.owned });
    for (const [id, entry] of this.entries) this.send({ op: 'arm', id, target: entry.target, leftovers: entry.leftovers, deadline: entry.deadline });
    return ready;
  }

  private send(request: WatchdogRequest): void {
    if (this.closed) return;
    this.child?.stdin?.write(`${JSON.stringify(request)}\n`);
  }

  /** Remove these directories too if the worker dies. */
  owns(dirs: string[]): void {
    this.owned.push(...dirs);
    this.send({ op: 'owns', dirs });
  }

  arm(id: string, target: ReapTarget, leftovers: Leftovers, deadline: number | null, onFenced: () => void): void {
    const entry: Entry = {
      target: {
        ...(target.uid === undefined ? {} : { uid: target.uid }),
        cgroups: [...(target.cgroups ?? [])],
        processes: [...(target.processes ?? [])],
        groups: [...(target.groups ?? [])],
      },
      leftovers,
      deadline,
      onFenced,
    };
    this.entries.set(id, entry);
    this.send({ op: 'arm', id, target: entry.target, leftovers, deadline });
  }

  /** One more process of the sandbox, by identity (pid and start time). */
  addProcess(id: string, pid: number | undefined): void {
    const entry = this.entries.get(id);
    const start = pid === undefined ? null : processStart(pid);
    if (!entry || pid === undefined || start === null) return;
    entry.target.processes.push({ pid, start });
    this.send({ op: 'process', id, process: { pid, start } });
  }

  addGroup(id: string, group: number | undefined): void {
    const entry = this.entries.get(id);
    if (!entry || group === undefined) return;
    entry.target.groups.push(group);
    this.send({ op: 'group', id, group });
  }

  renew(id: string, deadline: number | null): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.deadline = deadline;
    this.send({ op: 'renew', id, deadline });
  }

  disarm(id: string): void {
    if (!this.entries.delete(id)) return;
    this.send({ op: 'disarm', id });
  }

  /** Let the watchdog go: it kills what is still armed, removes what it owns, and exits. */
  close(): void {
    if (this.closed) return;
    this.child?.stdin?.end();
    this.closed = true;
  }
}

/**
 * One sandbox's fence (`SandboxSpec.fenceAfterMs`, `Sandbox.renewFence`): the
 * deadline, kept here and by the watchdog. The worker's own timer ends the
 * sandbox at the deadline when the worker runs (`onLapse`); the watchdog does
 * whether it runs or not.
 */
export class SandboxFence {
  /** A request to the sandbox, failing as the fence's when it lapsed before or during it (a watchdog's kill looks like a lost sandbox). */
  guard<T>(request: () => Promise<T>): Promise<T> {
    if (this.lapsed()) return Promise.reject(new FenceLapsedError());
    return request().catch((error: unknown) => {
      throw this.lapsed() ? new FenceLapsedError() : error;
    });
  }

  /** What ends the sandbox when the deadline passes (set by the sandbox; called once). */
  onLapse: () => void = () => {};
  private deadline: number | null;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;

  constructor(
    fenceAfterMs: number | undefined,
    private readonly watchdog: { renew(deadline: number | null): void } | null = null,
  ) {
    if (fenceAfterMs !== undefined && (!Number.isFinite(fenceAfterMs) || fenceAfterMs < 0)) throw new Error(`fenceAfterMs: ${fenceAfterMs} is not a duration`);
    this.deadline = fenceAfterMs === undefined ? null : monotonicMs() + fenceAfterMs;
    this.arm();
  }

  /** The deadline on the monotonic clock, or null (no fence). */
  get at(): number | null {
    return this.deadline;
  }

  lapsed(): boolean {
    return this.deadline !== null && monotonicMs() >= this.deadline;
  }

  /** Extend the deadline to now + `validForMs` (a fence that lapsed stays lapsed). */
  renew(validForMs: number): void {
    if (!Number.isFinite(validForMs) || validForMs < 0) throw new Error(`renewFence: ${validForMs} is not a duration`);
    if (this.lapsed()) return;
    this.deadline = monotonicMs() + validForMs;
    this.watchdog?.renew(this.deadline);
    this.arm();
  }

  /** The deadline may have passed (the timer fired, or the watchdog says so). */
  check(): void {
    if (this.ended || !this.lapsed()) return;
    this.ended = true;
    this.stop();
    this.onLapse();
  }

  private arm(): void {
    this.stop();
    if (this.deadline === null) return;
    const wait = (): void => {
      this.timer = setTimeout(
        () => {
          this.check();
          if (!this.ended) wait(); // woke a little early
        },
        Math.min(2 ** 31 - 1, Math.max(1, Math.ceil((this.deadline ?? 0) - monotonicMs()))),
      );
      this.timer.unref();
    };
    wait();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
