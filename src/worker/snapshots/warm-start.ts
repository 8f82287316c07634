import type { ClaimedRun } from '../../core/worker-protocol.js';
import { claimedNetwork, networkKey } from '../egress/run-network.js';
import type { SnapshotMeta } from './snapshot-store.js';
import type { SnapshotInputs } from './snapshot-key.js';

/** Bumped when what a snapshot holds, or how a run starts from one, changes: older snapshots stop matching. */
export const SNAPSHOT_FORMAT = 1;

type ClaimedSecrets = Exclude<ClaimedRun['secrets'], { error: unknown }>;

/** What determines the state a run's setup leaves, from the claimed run (src/worker/snapshots/snapshot-key.ts). */
export function snapshotInputs(run: ClaimedRun, imageDigest: string | null, secrets: ClaimedSecrets | null, backend: string): SnapshotInputs {
  const environment = run.environment;
  return {
    teamId: run.team_id,
    imageDigest,
    setupCommands: environment?.setupCommands ?? [],
    env: environment?.env ?? {},
    network: networkKey(claimedNetwork(run)),
    repos: environment?.repos ?? [],
    secrets: { ...(secrets?.env ?? {}), ...(secrets?.setup_env ?? {}) },
    format: SNAPSHOT_FORMAT,
    backend,
  };
}

/** The snapshot as its events carry it (the server records the environment's latest). */
export function snapshotRecord(meta: SnapshotMeta): { key: string; bytes: number; created_at: number; hits: number } {
  return { key: meta.key, bytes: meta.bytes, created_at: meta.createdAt, hits: meta.hits };
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

export function restoredMessage(meta: SnapshotMeta, maintenance: number, now: number): string {
  const then = maintenance > 0 ? `ran ${maintenance} maintenance command${maintenance === 1 ? '' : 's'}` : 'no maintenance commands';
  return `Warm start from the environment's snapshot ${meta.key.slice(0, 12)} (${mib(meta.bytes)}, saved ${age(now - meta.createdAt)} ago, hit ${meta.hits}): repositories moved to their branches' commits, setup skipped, ${then}.`;
}

export function savedMessage(meta: SnapshotMeta): string {
  return `Saved a snapshot ${meta.key.slice(0, 12)} of the workspace${mib(meta.bytes) ? ` (${mib(meta.bytes)})` : ''} after setup: the next run of this environment with the same image, setup, variables, repositories and secrets starts from it.`;
}
