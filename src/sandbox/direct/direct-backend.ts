import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { FenceLapsedError, SandboxFence, Watchdog } from '../fence.js';
import type { ExecOptions, ExecResult, Sandbox, SandboxBackend, SandboxPhase, SandboxSpec } from '../sandbox-backend.js';

export interface DirectBackendOptions {
  /** The built fence watchdog (`dist/sandbox/watchdog.js`). */
  watchdogScript?: string;
  onWarning?: (message: string) => void;
}

/**
 * No isolation: processes run as the worker's user in a temporary workspace.
 * Opt-in only (the worker prints a loud warning). Each exec gets its own
 * process group (`detached`), so a signal reaches its children too — but a
 * process that starts its own session escapes, which only a real sandbox
 * (bubblewrap's pid namespace) prevents. The fence watchdog kills the execs'
 * process groups at a lapsed fence or when the worker dies.
 */
export class DirectBackend implements SandboxBackend {
  readonly name = 'direct';
  readonly isolates = false;
  readonly runsImages = false;
  private watchdog: Promise<Watchdog | null> | null = null;

  constructor(
    private readonly root: string = tmpdir(),
    private readonly options: DirectBackendOptions = {},
  ) {}

  /** Started at the first sandbox; null (and a warning) if it cannot start. */
  private startWatchdog(): Promise<Watchdog | null> {
    const { watchdogScript, onWarning } = this.options;
    this.watchdog ??= Watchdog.start({ ...(watchdogScript ? { script: watchdogScript } : {}), ...(onWarning ? { onError: onWarning } : {}) }).catch((error: Error) => {
      onWarning?.(`the fence watchdog cannot start: ${error.message}`);
      this.watchdog = null; // try again at the next sandbox
      return null;
    });
    return this.watchdog;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (spec.fenceAfterMs !== undefined && !(spec.fenceAfterMs >= 0)) throw new Error(`fenceAfterMs: ${spec.fenceAfterMs} is not a duration`);
    const watchdog = await this.startWatchdog();
    if (!watchdog && spec.fenceAfterMs !== undefined) throw new Error('the fence watchdog is not running: a fenced sandbox cannot start');
    const dir = mkdtempSync(join(this.root, `oz-run-${spec.runId.slice(0, 8)}-`));
    const tools = Object.fromEntries((spec.tools ?? []).map((tool) => [tool.name, tool.path]));
    const fence = new SandboxFence(spec.fenceAfterMs, watchdog ? { renew: (deadline) => watchdog.renew(dir, deadline) } : null);
    watchdog?.arm(dir, { groups: [] }, { dirs: [dir] }, fence.at, () => fence.check());
    return new DirectSandbox(dir, spec.mounts, spec.supportDir ?? null, tools, fence, watchdog);
  }

  close(): void {
    void this.watchdog?.then((watchdog) => watchdog?.close());
  }
}

class DirectSandbox implements Sandbox {
  private readonly groups = new Set<ChildProcess>();
  private destroyed = false;

  constructor(
    readonly workspacePath: string,
    /** No mount namespace: the sandbox reads the host paths themselves. */
    readonly mountPaths: readonly string[],
    readonly supportDirPath: string | null,
    readonly toolPaths: Readonly<Record<string, string>>,
    private readonly fence: SandboxFence,
    private readonly watchdog: Watchdog | null,
  ) {
    this.supportSocketPath = supportDirPath ? join(supportDirPath, 'sock') : null;
    fence.onLapse = () => this.signal('SIGKILL');
  }

  renewFence(validForMs: number): void {
    this.fence.renew(validForMs);
  }

  readonly supportSocketPath: string | null;
  /** No sandbox of its own: the host's `oz` on PATH serves. */
  readonly ozCliPath = null;
  readonly nodePath = process.execPath;

  /** Limits are not enforced here (the worker says so in the run's events). */
  async limitHit(): Promise<null> {
    return null;
  }

  async writeFile(relativePath: string, content: string): Promise<string> {
    if (this.fence.lapsed()) throw new FenceLapsedError();
    const path = join(this.workspacePath, relativePath);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    if (this.destroyed) return Promise.reject(new Error('sandbox destroyed'));
    if (this.fence.lapsed()) return Promise.reject(new FenceLapsedError());
    const [command, ...args] = argv;
    if (!command) return Promise.reject(new Error('exec: empty argv'));
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        cwd: options.cwd ? resolvePath(this.workspacePath, options.cwd) : this.workspacePath,
        env: options.env,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      this.groups.add(child);
      // Detached: its own process group, which the watchdog kills at a lapsed fence or the worker's death.
      this.watchdog?.addGroup(this.workspacePath, child.pid);
      let timedOut = false;
      const timer = options.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            try {
              if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
            } catch {
              // Already gone.
            }
          }, options.timeoutMs)
        : null;
      child.stdout.on('data', (chunk: Buffer) => options.onOutput('stdout', chunk));
      child.stderr.on('data', (chunk: Buffer) => options.onOutput('stderr', chunk));
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin ?? '');
      child.on('error', (error) => {
        this.groups.delete(child);
        if (timer) clearTimeout(timer);
        reject(error);
      });
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        if (this.fence.lapsed()) reject(new FenceLapsedError());
        else resolve({ exitCode: code, signal, timedOut });
      };
      child.on('close', finish);
      // A background process may hold the output open for good: the exec is
      // over when the process is, once what it printed has been read.
      child.on('exit', (code, signal) =>
        setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish(code, signal);
        }, 250),
      );
    });
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    for (const child of this.groups) {
      if (child.pid === undefined) continue;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is gone.
      }
    }
  }

  stateDirs(): null {
    return null;
  }

  /** One system for every phase: nothing to switch. */
  async enter(_phase: SandboxPhase, whileStopped?: () => Promise<void>): Promise<boolean> {
    if (!whileStopped) return false;
    await this.restart(whileStopped);
    return true;
  }

  async restart(whileStopped?: () => Promise<void>): Promise<void> {
    if (this.fence.lapsed()) throw new FenceLapsedError();
    this.signal('SIGKILL');
    await new Promise((r) => setTimeout(r, 20));
    if (whileStopped) await whileStopped();
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.fence.stop();
    this.signal('SIGKILL');
    this.groups.clear();
    rmSync(this.workspacePath, { recursive: true, force: true });
    this.watchdog?.disarm(this.workspacePath);
  }
}
