import { snapshotNoticeDataSchema } from '../api/worker-protocol.js';
import { SNAPSHOT_NOTICE_REASONS, type SnapshotNoticeData, type WorkerEvent } from '../core/worker-protocol.js';
import type { ServerDeps } from './deps.js';

/** The snapshot a `notice` event reports, if it is a snapshot notice that fits its schema exactly. */
function reportOf(event: WorkerEvent): SnapshotNoticeData | 'malformed' | null {
  if (event.type !== 'notice' || !(SNAPSHOT_NOTICE_REASONS as readonly unknown[]).includes(event.data.reason)) return null;
  const parsed = snapshotNoticeDataSchema.safeParse(event.data);
  return parsed.success ? parsed.data : 'malformed';
}

/**
 * Record the latest snapshot a worker's event batch reports (a `notice` with
 * reason `snapshot_saved` or `snapshot_restored`, docs/environments.md
 * "Snapshots") on the run's environment. The events are stored already, as
 * any notice; a report that does not fit, a run without an environment, or a
 * failure here is logged and changes nothing else: the upload never fails
 * for it.
 */
export async function recordSnapshotReports(deps: ServerDeps, runId: string, events: readonly WorkerEvent[]): Promise<void> {
  let latest: SnapshotNoticeData | null = null;
  for (const event of events) {
    const report = reportOf(event);
    if (report === 'malformed') deps.logger.warn({ runId, reason: event.data.reason }, 'a snapshot notice that does not fit its schema: not recorded on the environment');
    else if (report) latest = report;
  }
  if (!latest) return;
  try {
    const run = await deps.store.getRunById(runId);
    if (!run?.environmentId) return;
    const { key, bytes, created_at, hits } = latest.snapshot;
    await deps.store.environmentSnapshots.record({
      environmentId: run.environmentId,
      teamId: run.teamId,
      key,
      bytes,
      createdAt: created_at,
      hits,
      lastUsedAt: deps.clock.now(),
      runId,
    });
  } catch (error) {
    deps.logger.warn({ err: error, runId }, 'cannot record the snapshot a run reported on its environment');
  }
}
