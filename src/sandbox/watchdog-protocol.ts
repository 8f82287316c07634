import type { KnownProcess, Leftovers, ReapTarget } from './reap.js';

/**
 * The worker → watchdog protocol (src/sandbox/watchdog.ts), one JSON object
 * a line. Deadlines are CLOCK_MONOTONIC milliseconds (`process.hrtime`),
 * absolute, so a message that waits in the pipe does not move its deadline.
 */
export type WatchdogRequest =
  /** Watch a sandbox: kill its processes at `deadline` (null: only if the worker dies), and on the worker's death remove `leftovers` too. */
  | { op: 'arm'; id: string; target: ReapTarget; leftovers: Leftovers; deadline: number | null }
  /** One more process of the sandbox (a launch, a namespace's pid 1). */
  | { op: 'process'; id: string; process: KnownProcess }
  /** One more process group of the sandbox (the direct backend's execs). */
  | { op: 'group'; id: string; group: number }
  | { op: 'renew'; id: string; deadline: number | null }
  /** The worker removed the sandbox itself: forget it. */
  | { op: 'disarm'; id: string }
  /** Remove these too when the worker dies (its own directory under the sandbox root). */
  | { op: 'owns'; dirs: string[] };

export type WatchdogEvent =
  | { ev: 'ready'; pid: number }
  /** A deadline passed: the sandbox's processes were killed (`complete`: none is left). */
  | { ev: 'fenced'; id: string; complete: boolean }
  | { ev: 'error'; message: string };
