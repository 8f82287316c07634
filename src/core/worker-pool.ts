import type { RunStatusMessage } from './run.js';

/**
 * Worker pools (docs/api.md "Worker pools"): a worker has a name and labels;
 * a run's `worker_host` names a worker or a label, and only a worker whose
 * name equals it or whose labels include it claims the run. `warp` (Oz's
 * hosted value) or no `worker_host` at all means any worker.
 */

/** A worker's name, one of its labels, or a run's `worker_host`: a short lowercase token. */
export const POOL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** What a name, label or `worker_host` that does not fit {@link POOL_NAME_PATTERN} is told. */
export const POOL_NAME_RULE = 'must be 1 to 63 characters: lowercase letters, digits, ".", "_" and "-", starting with a letter or digit';

/** Oz's hosted `worker_host`: any worker (nothing is stored for it). */
export const ANY_WORKER_HOST = 'warp';

/** At most this many labels per worker. */
export const MAX_WORKER_LABELS = 32;

/**
 * A worker counts as present (for routing decisions and the waiting message)
 * when it was seen this recently: a claim poll, or a heartbeat of one of its
 * runs. A live worker is seen every few seconds (a claim long-poll lasts at
 * most 30 s; a busy worker heartbeats every few seconds).
 */
export const WORKER_SEEN_WINDOW_MS = 5 * 60_000;

/** A worker not seen for this long is forgotten (its row removed by the sweeper). */
export const WORKER_FORGET_AFTER_MS = 24 * 60 * 60_000;

/** The `reason` of the status message of a run that waits for a worker that can take it. */
export const WAITING_FOR_WORKER = 'waiting_for_worker';

/** A run's stored `worker_host`: null for any worker (absent, or `warp`). */
export function routedHost(workerHost: string | undefined | null): string | null {
  return workerHost === undefined || workerHost === null || workerHost === ANY_WORKER_HOST ? null : workerHost;
}

/**
 * A host name as a worker name: lowercased, every character a name cannot
 * hold turned into `-`, separators at either end dropped, at most 63 characters;
 * `worker` when nothing is left.
 */
export function workerNameFromHost(host: string): string {
  const name = host
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')
    .replace(/^[._-]+/, '')
    .slice(0, 63)
    .replace(/[._-]+$/, '');
  return POOL_NAME_PATTERN.test(name) ? name : 'worker';
}

/** What a worker answers to: its name and its labels. */
export interface PoolMember {
  name: string;
  labels: readonly string[];
}

/** Whether a worker may take a run routed to `host` (null: any worker may). */
export function answersTo(worker: PoolMember, host: string | null): boolean {
  return host === null || worker.name === host || worker.labels.includes(host);
}

/**
 * The status message of a run nobody can take yet: which name or label it
 * waits for, and how many workers were seen (none of which has it).
 */
export function waitingForWorkerMessage(host: string, seenWorkers: number): RunStatusMessage {
  const minutes = Math.round(WORKER_SEEN_WINDOW_MS / 60_000);
  const seen =
    seenWorkers === 0
      ? `no worker was seen in the last ${minutes} minutes`
      : seenWorkers === 1
        ? `the one worker seen in the last ${minutes} minutes does not have it`
        : `none of the ${seenWorkers} workers seen in the last ${minutes} minutes has it`;
  return { message: `Waiting for a worker with name or label "${host}" (${seen}).`, reason: WAITING_FOR_WORKER };
}

/** A worker as the server last saw it: what its claims said, and when. */
export interface SeenWorker extends PoolMember {
  id: string;
  /** The sandbox backend's name (`bwrap`, `direct`). */
  backend: string;
  /** How many runs it executes at once. */
  capacity: number;
  version: string;
  /** The worker token it claims with (`embedded` for a server's own worker). */
  tokenName: string | null;
  firstSeenAt: number;
  lastSeenAt: number;
}

/** The names a set of workers answer to: their names and labels, each once. */
export function poolNamesOf(workers: readonly PoolMember[]): string[] {
  return [...new Set(workers.flatMap((w) => [w.name, ...w.labels]))];
}
