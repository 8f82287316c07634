/**
 * One supervised `oz` process slot (a server or a worker): started, killed,
 * frozen and restarted by PID, its output in a log file per start (so a
 * restarted process's log starts clean and a SIGKILL loses nothing). Every
 * PID a slot ever had is kept for the leftover check at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OZ_BIN } from '../../test/support/oz-server-process.js';

export class OzProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private starts = 0;
  /** Frozen with SIGSTOP (and not continued yet). */
  frozen = false;
  /** Every PID this slot has had, oldest first. */
  readonly pids: number[] = [];
  /** Exits the harness did not cause (a crash): when, how, and the log's end. */
  readonly crashes: { at: number; pid: number; code: number | null; signal: string | null; logTail: string }[] = [];
  logFile = '';
  private expectingExit = false;

  constructor(
    readonly name: string,
    private readonly argv: () => string[],
    private readonly env: () => Record<string, string>,
    private readonly logDir: string,
  ) {}

  get pid(): number | null {
    return this.running ? (this.child?.pid ?? null) : null;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.logFile = join(this.logDir, `${this.name}.${++this.starts}.log`);
    const fd = openSync(this.logFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [OZ_BIN, ...this.argv()], { env: this.env(), stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.frozen = false;
    this.expectingExit = false;
    if (child.pid !== undefined) this.pids.push(child.pid);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.expectingExit) this.crashes.push({ at: Date.now(), pid: child.pid ?? -1, code, signal, logTail: this.logTail() });
        resolve();
      });
      child.once('error', () => resolve());
    });
  }

  /** The current start's output so far. */
  log(): string {
    return this.logFile && existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  logTail(lines = 30): string {
    return this.log().trimEnd().split('\n').slice(-lines).join('\n');
  }

  signal(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === null) return;
    process.kill(pid, signal);
    if (signal === 'SIGSTOP') this.frozen = true;
    if (signal === 'SIGCONT') this.frozen = false;
  }

  /** kill -9, and wait until the process is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.signal('SIGKILL');
    await this.exited;
  }

  /** SIGCONT (a frozen process cannot act on SIGTERM), SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const outcome = await Promise.race([this.exited.then(() => 'exited' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') await this.kill9();
  }

  /** Resolves when the current process has exited. */
  whenExited(): Promise<void> {
    return this.exited;
  }
}

/** Poll `test` every 100 ms until it returns a value, the slot's process exits, or `timeoutMs` passes. */
export async function waitFor<T>(what: string, slot: OzProcess, test: () => Promise<T | null> | T | null, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await test();
    if (value !== null) return value;
    if (!slot.running) throw new Error(`${slot.name} exited while waiting for ${what}:\n${slot.logTail()}`);
    if (Date.now() > deadline) throw new Error(`${slot.name}: no ${what} after ${timeoutMs} ms:\n${slot.logTail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
