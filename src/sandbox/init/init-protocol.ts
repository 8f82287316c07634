/**
 * The messages between the worker and the init inside a bwrap sandbox: one
 * JSON object per line, requests on the init's stdin, replies on its stdout.
 * Binary data travels base64-encoded. Type-only, so the init (which is copied
 * into the sandbox as a single file) can share it without a runtime import.
 */
export type InitRequest =
  | {
      op: 'exec';
      id: number;
      argv: string[];
      env: Record<string, string>;
      /** Absolute inside the sandbox. */
      cwd: string;
      stdin: string;
      /** Kill the exec's process group after this long (0 = never). */
      timeoutMs: number;
    }
  | { op: 'write'; id: number; path: string; data: string; mode: number }
  /** Signal every process of the sandbox but the init: `kill(-1, signal)`; with an id, answered once sent. */
  | { op: 'signal'; id?: number; signal: 'SIGTERM' | 'SIGKILL' };

export type InitReply =
  | { ev: 'ready'; pid: number }
  | { ev: 'out'; id: number; stream: 'stdout' | 'stderr'; data: string }
  | { ev: 'exit'; id: number; code: number | null; signal: string | null; timedOut: boolean }
  | { ev: 'written'; id: number }
  | { ev: 'signaled'; id: number }
  | { ev: 'error'; id: number; message: string };
