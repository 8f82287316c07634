import type { Logger } from 'pino';
import type { Sandbox } from '../sandbox/sandbox-backend.js';
import type { EnsuredImage } from './images/image-store.js';
import type { ProtocolClient } from './protocol-client.js';
import type { RunSockets } from './run-sockets.js';

/**
 * What an ended execution leaves alive for a follow-up (docs/design.md
 * "Follow-ups and executions"): its sandbox with the workspace as the agent
 * left it, the sockets' directory bound into it, and what it holds of the
 * worker's caches. The run's next execution on this worker takes it up as is.
 */
export interface IdleSandbox {
  runId: string;
  /** The ended execution's lease token: what the hold is released with. */
  leaseToken: string;
  sandbox: Sandbox;
  sockets: RunSockets;
  image: EnsuredImage | null;
  /** The mirrors bound into it and each checkout's base commit (the branch's publish base). */
  mounts: string[];
  bases: string[];
  /** The network it was made with (src/worker/egress/run-network.ts `networkKey`): a run whose network changed since starts afresh. */
  network: string;
  /** Releases what it holds of the worker's caches (its image, its warm-start snapshot). */
  release: () => void;
}

interface Held {
  idle: IdleSandbox;
  until: number;
  timer: NodeJS.Timeout;
  fence: NodeJS.Timeout;
}

/** How often the worker asks which of its idle sandboxes it may keep (a cancel ends one). */
const CHECK_EVERY_MS = 2000;
/** The fence of an idle sandbox is renewed this often, for this long: it ends itself if the worker dies. */
const FENCE_EVERY_MS = 5000;
const FENCE_FOR_MS = 15_000;

/**
 * The worker's idle sandboxes: each until its timeout, a cancel (the
 * server's answer to the periodic check), a drain, or the worker needing its
 * slot for another run; then torn down and its hold released on the server.
 * An idle sandbox's fence is kept by this pool, so it still ends itself when
 * the worker dies.
 */
export class IdleSandboxes {
  private readonly held = new Map<string, Held>();
  private checker: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly client: ProtocolClient,
    private readonly workerId: () => string,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** Keep it for `forMs` (false, and nothing kept, once the pool is closed: the caller tears it down). */
  keep(idle: IdleSandbox, forMs: number): boolean {
    if (this.closed) return false;
    const until = Date.now() + forMs;
    const timer = setTimeout(() => void this.tearDown(idle.runId, 'idle timeout'), forMs);
    const fence = setInterval(() => idle.sandbox.renewFence(Math.min(FENCE_FOR_MS, Math.max(0, until - Date.now()) + FENCE_EVERY_MS)), FENCE_EVERY_MS);
    idle.sandbox.renewFence(Math.min(FENCE_FOR_MS, forMs + FENCE_EVERY_MS));
    this.held.set(idle.runId, { idle, until, timer, fence });
    this.checker ??= setInterval(() => void this.check(), CHECK_EVERY_MS);
    return true;
  }

  /** The run's idle sandbox, handed to its next execution (no longer idle), or null. */
  take(runId: string): IdleSandbox | null {
    const held = this.held.get(runId);
    if (!held) return null;
    this.forget(runId, held);
    return held.idle;
  }

  /** Tear down the oldest idle sandbox (its slot is needed); false when there is none. */
  async evictOldest(): Promise<boolean> {
    const oldest = [...this.held.values()].sort((a, b) => a.until - b.until)[0];
    if (!oldest) return false;
    await this.tearDown(oldest.idle.runId, 'the worker needs the slot');
    return true;
  }

  /** Drain: stop keeping any. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.held.keys()].map((runId) => this.tearDown(runId, 'the worker is shutting down')));
    if (this.checker) clearInterval(this.checker);
    this.checker = null;
  }

  private forget(runId: string, held: Held): void {
    clearTimeout(held.timer);
    clearInterval(held.fence);
    this.held.delete(runId);
    if (this.held.size === 0 && this.checker) {
      clearInterval(this.checker);
      this.checker = null;
    }
  }

  /** Ask the server which holds still stand; tear down the rest (a cancel). */
  private async check(): Promise<void> {
    const ids = [...this.held.keys()];
    if (ids.length === 0) return;
    let keep: Set<string>;
    try {
      keep = new Set((await this.client.idle({ worker_id: this.workerId(), run_ids: ids })).keep);
    } catch (error) {
      this.logger.debug({ err: error }, 'idle check failed; trying again');
      return;
    }
    for (const id of ids) if (!keep.has(id) && this.held.has(id)) await this.tearDown(id, 'cancelled');
  }

  private async tearDown(runId: string, why: string): Promise<void> {
    const held = this.held.get(runId);
    if (!held) return;
    this.forget(runId, held);
    const { idle } = held;
    this.logger.info({ runId, why }, 'tearing down an idle sandbox');
    await destroyIdle(idle, this.logger);
    await this.client.releaseIdle(runId, idle.leaseToken).catch((error: unknown) => this.logger.warn({ err: error, runId }, 'could not release the idle hold'));
  }
}

/** End an idle sandbox: its processes, its workspace, its sockets, what it held. */
export async function destroyIdle(idle: IdleSandbox, logger: Logger): Promise<void> {
  await idle.sandbox.destroy().catch((error: unknown) => logger.error({ err: error, runId: idle.runId }, 'could not remove the sandbox'));
  idle.release();
  await idle.sockets.close().catch((error: unknown) => logger.error({ err: error, runId: idle.runId }, 'could not stop the support socket'));
}
