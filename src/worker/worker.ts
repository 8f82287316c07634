import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { backoffDelay, sleep } from '../core/retry.js';
import type { Logger } from 'pino';
import { randomToken } from '../core/ids.js';
import type { WorkerProfile } from '../core/worker-protocol.js';
import { ProtocolError } from './protocol-client.js';
import { RunExecution, type ExecutionDeps } from './run-execution.js';
import { destroyIdle, IdleSandboxes } from './idle-sandboxes.js';
import { claimedNetwork, networkKey } from './egress/run-network.js';
import { SpareSandboxes } from './spare-sandboxes.js';

export interface WorkerOptions {
  concurrency: number;
  /** Which routed runs (`worker_host`) it may claim: its name and labels (docs/api.md "Worker pools"). */
  name: string;
  labels: readonly string[];
  /** Its Oz version, as `oz worker list` shows it. */
  version: string;
  /** Starts the worker's id (`embedded-` for a server's own worker: known dead when that server restarts). */
  idPrefix?: string;
  /** How long a claim long-poll waits on the server. */
  claimWaitMs?: number;
  /** Sandboxes started ahead of claims (src/worker/spare-sandboxes.ts); default 0: none. */
  spareSandboxes?: number;
}

/** A spare sandbox no claim took within this long is torn down. */
const SPARE_IDLE_MS = 10 * 60_000;

/**
 * A worker: claims runs (long-poll) while it has free slots and runs each in a
 * {@link RunExecution}. `drain(graceMs)` stops claiming, lets running runs
 * finish within the grace period, then cancels the rest with a clear reason.
 */
export class Worker {
  readonly id: string;
  private readonly executions = new Map<string, RunExecution>();
  private readonly claiming = new AbortController();
  private loop: Promise<void> | null = null;
  private slotFreed: (() => void) | null = null;

  private readonly deps: ExecutionDeps;
  private readonly idle: IdleSandboxes;
  private readonly spares: SpareSandboxes;

  constructor(
    deps: ExecutionDeps,
    private readonly options: WorkerOptions,
    private readonly logger: Logger,
  ) {
    this.id = `${options.idPrefix ?? ''}${hostname()}-${process.pid}-${randomToken(4)}`;
    this.idle = new IdleSandboxes(deps.client, () => this.id, logger);
    // On bwrap only for now: the direct backend's sandbox is a directory, and spares on the
    // container backend are not checked against its egress rules yet.
    const spares = deps.backend.name === 'bwrap' ? (options.spareSandboxes ?? 0) : 0;
    this.spares = new SpareSandboxes(deps.backend, deps.supportRoot, logger, { max: spares, idleMs: SPARE_IDLE_MS });
    this.deps = { ...deps, idle: this.idle, spares: this.spares };
  }

  start(): void {
    this.loop ??= this.claimLoop();
  }

  get activeRuns(): number {
    return this.executions.size;
  }

  /** What every claim says of this worker: the server records it and routes by its name and labels. */
  get profile(): WorkerProfile {
    return { name: this.options.name, labels: [...this.options.labels], backend: this.deps.backend.name, capacity: this.options.concurrency, version: this.options.version };
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.claiming.signal.aborted) {
      const free = this.options.concurrency - this.executions.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      try {
        const { runs } = await this.deps.client.claim(
          { worker_id: this.id, max_runs: free, wait_ms: this.options.claimWaitMs ?? 25_000, worker: this.profile },
          this.claiming.signal,
        );
        // When the answer came, not when the long-poll was sent (the poll may
        // wait long before a run appears); each run says how much of its lease
        // was left as the answer left the server, and the first heartbeat, sent
        // at once, then bounds it from a request's send time.
        const claimedAt = performance.now();
        failures = 0;
        for (const run of runs) {
          // The run's last execution left its sandbox idle here: this one goes on in it. Else an idle
          // sandbox of another run gives up its slot when the worker is full.
          let adopted = this.idle.take(run.run_id);
          // A sandbox made under another network (the environment's policy or ranges changed since) is not resumed.
          if (adopted && (run.resume_idle !== true || adopted.network !== networkKey(claimedNetwork(run)))) {
            await destroyIdle(adopted, this.logger);
            adopted = null;
          }
          if (!adopted && this.executions.size + this.idle.size >= this.options.concurrency) await this.idle.evictOldest();
          const execution = new RunExecution(run, this.deps, claimedAt, adopted);
          this.executions.set(run.run_id, execution);
          this.logger.info({ runId: run.run_id, attempt: run.attempt }, 'claimed run');
          void execution.finished.finally(() => {
            this.executions.delete(run.run_id);
            this.slotFreed?.();
            this.slotFreed = null;
          });
        }
      } catch (error) {
        if (this.claiming.signal.aborted) break;
        failures += 1;
        const level = error instanceof ProtocolError && error.status === 401 ? 'error' : 'warn';
        this.logger[level]({ err: error }, 'claim failed; retrying');
        await sleep(backoffDelay(failures, { baseMs: 250, maxMs: 10_000 }), this.claiming.signal);
      }
    }
  }

  /**
   * Graceful drain: stop claiming; wait up to `graceMs` for running runs; then
   * cancel what is left (CANCELLED, reason `worker_draining`) and wait for it.
   */
  async drain(graceMs: number): Promise<void> {
    this.claiming.abort();
    this.slotFreed?.();
    await this.loop;
    await this.idle.close();
    await this.spares.close();
    const all = () => Promise.all([...this.executions.values()].map((e) => e.finished));
    const timedOut = await Promise.race([all().then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
    if (timedOut) {
      for (const execution of this.executions.values()) {
        this.logger.warn({ runId: execution.runId }, 'drain grace period over; cancelling the run');
        execution.cancel({
          message: `Cancelled: the worker shut down and the run did not finish within the ${Math.round(graceMs / 1000)} s drain grace period.`,
          reason: 'worker_draining',
        });
      }
      await all();
    }
    // Executions that ended meanwhile may not keep their sandboxes: the pool is closed.
    await this.idle.close();
    this.deps.backend.close?.();
  }
}
