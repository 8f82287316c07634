import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { ExecOptions, ExecResult, Sandbox, SandboxBackend, SandboxSpec } from '../sandbox-backend.js';

/**
 * No isolation: processes run as the worker's user in a temporary workspace.
 * Opt-in only (the worker prints a loud warning). Each exec gets its own
 * process group (`detached`), so a signal reaches its children too — but a
 * process that starts its own session escapes, which only a real sandbox
 * (bubblewrap's pid namespace) prevents.
 */
export class DirectBackend implements SandboxBackend {
  readonly name = 'direct';
  readonly isolates = false;

  constructor(private readonly root: string = tmpdir()) {}

  async create(spec: SandboxSpec): Promise<Sandbox> {
    const dir = mkdtempSync(join(this.root, `oz-run-${spec.runId.slice(0, 8)}-`));
    const tools = Object.fromEntries((spec.tools ?? []).map((tool) => [tool.name, tool.path]));
    return new DirectSandbox(dir, spec.mounts, spec.supportDir ?? null, tools);
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
  ) {
    this.supportSocketPath = supportDirPath ? join(supportDirPath, 'sock') : null;
  }

  readonly supportSocketPath: string | null;
  readonly nodePath = process.execPath;

  /** Limits are not enforced here (the worker says so in the run's events). */
  async limitHit(): Promise<null> {
    return null;
  }

  async writeFile(relativePath: string, content: string): Promise<string> {
    const path = join(this.workspacePath, relativePath);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    if (this.destroyed) return Promise.reject(new Error('sandbox destroyed'));
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
        resolve({ exitCode: code, signal, timedOut });
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

  async restart(): Promise<void> {
    this.signal('SIGKILL');
    await new Promise((r) => setTimeout(r, 20));
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.signal('SIGKILL');
    this.groups.clear();
    rmSync(this.workspacePath, { recursive: true, force: true });
  }
}
