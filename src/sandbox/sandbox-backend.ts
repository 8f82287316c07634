/**
 * Where a run's processes execute (DESIGN.md "Sandboxes"). One sandbox per
 * run, alive for the whole run; `exec` starts a process in it; `signal`
 * reaches every process the sandbox started; `destroy` kills what is left and
 * removes the workspace. Backends differ in capability flags, never in the
 * callers' code.
 */
export type OutputStream = 'stdout' | 'stderr';

export interface ExecOptions {
  /** The process environment, complete: nothing is inherited from the worker. */
  env: Record<string, string>;
  /** Relative to the workspace. */
  cwd?: string;
  stdin?: string;
  onOutput: (stream: OutputStream, chunk: Buffer) => void;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
}

export interface Sandbox {
  /** The workspace as the sandbox's processes see it. */
  readonly workspacePath: string;
  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult>;
  /** Write a file into the workspace (0600); returns its path as the sandbox sees it. */
  writeFile(relativePath: string, content: string): Promise<string>;
  /** Signal every process of the sandbox (their process groups). */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void;
  /** Kill everything left and remove the workspace. Idempotent. */
  destroy(): Promise<void>;
}

export interface SandboxSpec {
  runId: string;
}

export interface SandboxBackend {
  readonly name: string;
  /** Whether a run is isolated from the host and other runs (bwrap: yes; direct: no). */
  readonly isolates: boolean;
  create(spec: SandboxSpec): Promise<Sandbox>;
}
