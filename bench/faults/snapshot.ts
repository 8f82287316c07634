/**
 * What the checks read, taken once every run is terminal (or the wait gave
 * up): the deployment's tables, straight from PostgreSQL, and the branches
 * of the publish remote with their reflogs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { query } from './db.js';

export interface RunRow {
  id: string;
  state: string;
  attempt: number;
  lastEventSeq: number;
  workerId: string | null;
  statusReason: string | null;
  statusMessage: string | null;
}

export interface EventRow {
  seq: number;
  type: string;
  at: number;
  data: Record<string, unknown>;
}

export interface BatchRow {
  leaseToken: string;
  batchNo: number;
  firstSeq: number;
  count: number;
}

export interface RemoteBranch {
  runId: string;
  /** Updates of the branch in the remote's reflog (one per push that changed it). */
  updates: number;
  /** `marker.txt` on the branch. */
  marker: string;
}

export interface Snapshot {
  takenAt: number;
  runs: Map<string, RunRow>;
  events: Map<string, EventRow[]>;
  batches: Map<string, BatchRow[]>;
  /** Artifact types per run, one entry per artifact. */
  artifacts: Map<string, string[]>;
  branches: RemoteBranch[];
}

function group<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k) ?? [];
    list.push(row);
    map.set(k, list);
  }
  return map;
}

function parseJson(text: string | null): Record<string, unknown> {
  if (!text) return {};
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The remote's `oz/*` branches, their reflog length and published marker. */
export function readRemote(bare: string, prefix = 'oz/'): RemoteBranch[] {
  const git = (...args: string[]): string =>
    execFileSync('git', ['--git-dir', bare, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
    });
  const names = git('for-each-ref', '--format=%(refname:short)', `refs/heads/${prefix}`).split('\n').filter(Boolean);
  return names.map((name) => {
    const log = join(bare, 'logs', 'refs', 'heads', name);
    const updates = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
    let marker = '';
    try {
      marker = git('show', `${name}:marker.txt`).trim();
    } catch {
      marker = '(no marker.txt)';
    }
    return { runId: name.slice(prefix.length), updates, marker };
  });
}

export async function takeSnapshot(databaseUrl: string, remoteBare: string): Promise<Snapshot> {
  const runs = await query<{ id: string; state: string; attempt: string; last_event_seq: string; worker_id: string | null; status_message: string | null }>(
    databaseUrl,
    'SELECT id, state, attempt, last_event_seq, worker_id, status_message FROM runs',
  );
  const events = await query<{ run_id: string; seq: string; type: string; at: string; data: string }>(
    databaseUrl,
    'SELECT run_id, seq, type, at, data FROM run_events ORDER BY run_id, seq',
  );
  const batches = await query<{ run_id: string; lease_token: string; batch_no: string; first_seq: string; count: string }>(
    databaseUrl,
    'SELECT run_id, lease_token, batch_no, first_seq, count FROM run_event_batches ORDER BY run_id, first_seq',
  );
  const artifacts = await query<{ run_id: string; type: string }>(databaseUrl, 'SELECT run_id, type FROM run_artifacts');
  return {
    takenAt: Date.now(),
    runs: new Map(
      runs.map((r) => {
        const status = parseJson(r.status_message);
        const row: RunRow = {
          id: r.id,
          state: r.state,
          attempt: Number(r.attempt),
          lastEventSeq: Number(r.last_event_seq),
          workerId: r.worker_id,
          statusReason: typeof status.reason === 'string' ? status.reason : null,
          statusMessage: typeof status.message === 'string' ? status.message : null,
        };
        return [r.id, row];
      }),
    ),
    events: new Map(
      [...group(events, (e) => e.run_id)].map(([id, rows]) => [id, rows.map((e) => ({ seq: Number(e.seq), type: e.type, at: Number(e.at), data: parseJson(e.data) }))]),
    ),
    batches: new Map(
      [...group(batches, (b) => b.run_id)].map(([id, rows]) => [
        id,
        rows.map((b) => ({ leaseToken: b.lease_token, batchNo: Number(b.batch_no), firstSeq: Number(b.first_seq), count: Number(b.count) })),
      ]),
    ),
    artifacts: new Map([...group(artifacts, (a) => a.run_id)].map(([id, rows]) => [id, rows.map((a) => a.type)])),
    branches: readRemote(remoteBare),
  };
}
