import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LimitKind, Sandbox, SandboxBackend, SandboxSpec } from '../sandbox/sandbox-backend.js';

/** A sandbox's spec but for what only a claimed run has: its id, its lease's fence, its limit handler, its support directory. */
export type SpareShape = Omit<SandboxSpec, 'runId' | 'onLimit' | 'fenceAfterMs' | 'supportDir'>;

/** A spare a run took: the sandbox, the support directory bound into it (the run's sockets serve there), and what the spare held. */
export interface TakenSpare {
  sandbox: Sandbox;
  supportDir: string;
  /** Where a limit the sandbox enforces is reported from now on (the run's stop). */
  onLimit(handler: (kind: LimitKind) => void): void;
  /** Releases what the spare held of the worker's caches (its image, its snapshot); the run holds its own. */
  release: () => void;
}

export interface SpareOptions {
  /** At most this many spares at once (each a different shape); 0: none are made. */
  max: number;
  /** A spare no claim took within this long is torn down. */
  idleMs: number;
}

/** The fence of a waiting spare is renewed this often, for this long: a frozen worker's spares end themselves. */
const FENCE_EVERY_MS = 5000;
const FENCE_FOR_MS = 15_000;

interface Spare {
  key: string;
  /** Null until it started (and when it failed to). */
  sandbox: Sandbox | null;
  /** Settles once it started or failed to. */
  started: Promise<void>;
  /** `spare` while it waits; `taken` by a run; `discarded`: ended (or ended once started). */
  state: 'spare' | 'taken' | 'discarded';
  supportDir: string;
  release: () => void;
  handler: ((kind: LimitKind) => void) | null;
  broken: boolean;
  timers: NodeJS.Timeout[];
}

/**
 * Which shape a spare has, as one string: two claims get the same spare only
 * when everything the sandbox was started with is the same, and only within
 * one team (a spare is pristine, but a team's mirrors and snapshot are bound
 * into its spares, and no other team's run is to see them even by path).
 */
export function spareKey(teamId: string, shape: SpareShape): string {
  const { limits, image, restore } = shape;
  return JSON.stringify([
    teamId,
    shape.network,
    [...(shape.internalRanges ?? [])],
    [limits.pids, limits.memoryBytes, limits.diskBytes, limits.cpus ?? null],
    [...shape.mounts],
    (shape.tools ?? []).map((tool) => [tool.name, tool.path]),
    image ? [image.rootDir ?? null, image.engineImage ?? null, image.agentUid, image.agentGid] : null,
    restore ? [restore.workspace, restore.layer] : null,
    shape.phase ?? 'platform',
  ]);
}

/**
 * Sandboxes started ahead of claims (docs/design.md "Spare sandboxes"): once a
 * run is under way, the worker starts a sandbox shaped like the one the
 * environment's next run will ask for (same limits, network, mirrors, image
 * and snapshot), in which nothing runs but its init. The next claim of that
 * shape takes it instead of waiting for a sandbox to start: on bwrap, the
 * per-run file system, the jail and the Node.js init are done before the run
 * exists. A spare is used once; one nobody takes goes after `idleMs`, when
 * another shape needs its place, or when the worker drains.
 */
export class SpareSandboxes {
  /** In the order they were made: the first is the one to give way. */
  private readonly spares = new Map<string, Spare>();
  /** Spares still starting, which a drain waits for (each is ended once started, if nobody took it). */
  private readonly starting = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly backend: SandboxBackend,
    private readonly supportRoot: string,
    private readonly logger: Logger,
    private readonly options: SpareOptions,
  ) {}

  get size(): number {
    return this.spares.size;
  }

  /**
   * The spare of `key`, now the caller's (no longer a spare), or null. One
   * still starting is waited for: it is ready sooner than a sandbox started
   * now, and the two would only slow each other down.
   */
  async take(key: string): Promise<TakenSpare | null> {
    const spare = this.spares.get(key);
    if (!spare || spare.broken) return null;
    this.forget(spare, 'taken');
    await spare.started;
    if (!spare.sandbox || spare.broken) {
      // It failed to start (nothing is left of it then), or a limit ended it.
      if (spare.sandbox) await this.end(spare);
      return null;
    }
    const { sandbox, supportDir, release } = spare;
    return { sandbox, supportDir, release, onLimit: (handler) => (spare.handler = handler) };
  }

  /**
   * Start a spare of `shape` for the team's next claim, unless one is there.
   * `release` lets go of what the caller held of the worker's caches for it
   * (its snapshot, its image): called when the spare ends, or at once when
   * none is made.
   */
  prepare(teamId: string, shape: SpareShape, release: () => void): void {
    const key = spareKey(teamId, shape);
    if (this.closed || this.options.max <= 0 || this.spares.has(key)) return release();
    while (this.spares.size >= this.options.max) void this.discard(this.spares.values().next().value as Spare, 'another shape needs its place');
    let supportDir: string;
    try {
      supportDir = mkdtempSync(join(this.supportRoot, 'spare-'));
      chmodSync(supportDir, 0o711);
    } catch (error) {
      release();
      this.logger.warn({ err: error }, 'could not make a spare sandbox');
      return;
    }
    const spare: Spare = { key, sandbox: null, started: Promise.resolve(), state: 'spare', supportDir, release, handler: null, broken: false, timers: [] };
    this.spares.set(key, spare);
    spare.timers.push(setTimeout(() => void this.discard(spare, 'no claim took it'), this.options.idleMs).unref());
    const onLimit = (kind: LimitKind): void => {
      if (spare.handler) return spare.handler(kind);
      spare.broken = true;
      void this.discard(spare, `it hit its ${kind} limit`);
    };
    spare.started = this.backend.create({ ...shape, runId: 'spare', supportDir, onLimit }).then(
      async (sandbox) => {
        spare.sandbox = sandbox;
        if (spare.state === 'discarded') return this.end(spare);
        if (spare.state === 'taken') return;
        sandbox.renewFence(FENCE_FOR_MS);
        spare.timers.push(setInterval(() => sandbox.renewFence(FENCE_FOR_MS), FENCE_EVERY_MS).unref());
      },
      (error: unknown) => {
        this.logger.warn({ err: error }, 'could not start a spare sandbox');
        if (spare.state === 'spare') this.forget(spare, 'discarded');
        // A taker gets null and starts its own; what the spare held goes either way.
        rmSync(spare.supportDir, { recursive: true, force: true });
        spare.release();
      },
    );
    const started = spare.started;
    this.starting.add(started);
    void started.finally(() => this.starting.delete(started));
  }

  /** Drain: tear every spare down, and make no more. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.spares.values()].map((spare) => this.discard(spare, 'the worker is shutting down')));
    await Promise.all([...this.starting]);
  }

  private forget(spare: Spare, state: 'taken' | 'discarded'): void {
    for (const timer of spare.timers) clearTimeout(timer);
    spare.timers = [];
    spare.state = state;
    if (this.spares.get(spare.key) === spare) this.spares.delete(spare.key);
  }

  private async discard(spare: Spare, why: string): Promise<void> {
    if (spare.state !== 'spare') return;
    this.forget(spare, 'discarded');
    this.logger.debug({ why }, 'tearing down a spare sandbox');
    // One still starting is ended once it started (above).
    if (spare.sandbox) await this.end(spare);
  }

  /** Its processes, its workspace, its support directory, what it held. */
  private async end(spare: Spare): Promise<void> {
    await spare.sandbox?.destroy().catch((error: unknown) => this.logger.error({ err: error }, 'could not remove a spare sandbox'));
    rmSync(spare.supportDir, { recursive: true, force: true });
    spare.release();
  }
}
