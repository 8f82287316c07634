/**
 * An environment's latest warm-start snapshot (docs/environments.md
 * "Snapshots"): the state a run's setup left, kept by a worker and restored by
 * the next run of the same environment. The worker owns the snapshot itself;
 * the server records only what the worker reported about it, for
 * `oz environment get`.
 */
export interface EnvironmentSnapshot {
  environmentId: string;
  teamId: string;
  /** What the worker keyed the snapshot by: 64 lowercase hex digits. */
  key: string;
  bytes: number;
  /** When the worker made it (epoch ms, the worker's clock). */
  createdAt: number;
  /** How many runs the worker restored it for. */
  hits: number;
  /** When a run last reported it, saved or restored (epoch ms, the server's clock). */
  lastUsedAt: number;
  /** The run whose event reported it last. */
  runId: string;
}
