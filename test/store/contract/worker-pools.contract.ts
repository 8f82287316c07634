import { describe, expect, it } from 'vitest';
import { waitingForWorkerMessage, WORKER_SEEN_WINDOW_MS } from '../../../src/core/worker-pool.js';
import type { Store } from '../../../src/store/store.js';
import type { WorkerSighting } from '../../../src/store/worker-repository.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { newRun, seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

const LEASE_MS = 30_000;

const sighting = (id: string, name: string, labels: string[] = []): WorkerSighting => ({ id, name, labels, backend: 'direct', capacity: 2, version: '0.1.0', tokenName: 'pool' });

/** A run routed to `host` (undefined: any worker), created at `at`. */
async function routedRun(store: Store, teamId: string, host: string | undefined, at: number): Promise<string> {
  const config = host === undefined ? { harness: { type: 'command' as const } } : { harness: { type: 'command' as const }, workerHost: host };
  const { run } = await store.createRun(newRun(teamId, { title: `to ${host ?? 'any'}`, config }), at);
  return run.id;
}

/** Worker pools in the store (docs/api.md "Worker pools"): the claim's routing, admission, the workers table, the waiting message's compare-and-set. */
export function workerPoolContract(factory: StoreFactory): void {
  describe('worker pools', () => {
    const h = useStore(factory);

    it('a claim takes only the runs routed nowhere, to its name or to one of its labels, and records its name', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      // Every worker below is present, so admission lets every run through.
      for (const [id, name, labels] of [
        ['w-box1', 'box-1', ['gpu']],
        ['w-box2', 'box-2', ['arm64']],
      ] as const)
        await store.workers.record(sighting(id, name, [...labels]), T0);
      const any = await routedRun(store, team.id, undefined, T0 + 1);
      const gpu = await routedRun(store, team.id, 'gpu', T0 + 2);
      const box1 = await routedRun(store, team.id, 'box-1', T0 + 3);
      const arm = await routedRun(store, team.id, 'arm64', T0 + 4);
      expect((await store.admitQueuedRuns(team.id, T0 + 10)).map((r) => r.id).sort()).toEqual([any, gpu, box1, arm].sort());

      // A worker that names nothing (an older one) gets only the run routed nowhere.
      const nameless = await store.claimRuns({ workerId: 'w-old', limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 20 });
      expect(nameless.map((r) => r.id)).toEqual([any]);
      expect(nameless[0]).toMatchObject({ workerId: 'w-old', workerName: null });

      // box-2 (arm64) takes the arm64 run, never gpu's or box-1's.
      const second = await store.claimRuns({ workerId: 'w-box2', workerName: 'box-2', workerLabels: ['arm64'], limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 21 });
      expect(second.map((r) => r.id)).toEqual([arm]);
      expect(second[0]).toMatchObject({ workerId: 'w-box2', workerName: 'box-2' });

      // A worker with a label that is someone else's name takes nothing more.
      expect(await store.claimRuns({ workerId: 'w-x', workerName: 'x', workerLabels: ['box-2'], limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 22 })).toEqual([]);

      // box-1 (gpu) takes both: by its label and by its name.
      const first = await store.claimRuns({ workerId: 'w-box1', workerName: 'box-1', workerLabels: ['gpu'], limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 23 });
      expect(first.map((r) => r.id)).toEqual([gpu, box1]);
      expect((await store.getRunById(gpu))?.workerName).toBe('box-1');
    });

    it('routing filters before the limit: a claimer is not starved by older runs routed elsewhere', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await store.workers.record(sighting('w-gpu', 'g', ['gpu']), T0);
      const routed = [];
      for (let i = 0; i < 5; i++) routed.push(await routedRun(store, team.id, 'gpu', T0 + i));
      const plain = await routedRun(store, team.id, undefined, T0 + 10);
      await store.admitQueuedRuns(team.id, T0 + 20);
      const claimed = await store.claimRuns({ workerId: 'w-cpu', workerName: 'cpu-1', workerLabels: [], limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 30 });
      expect(claimed.map((r) => r.id)).toEqual([plain]);
      // The routed ones are still there for their worker, oldest first.
      const gpu = await store.claimRuns({ workerId: 'w-gpu', workerName: 'g', workerLabels: ['gpu'], limit: 2, leaseTtlMs: LEASE_MS, at: T0 + 31 });
      expect(gpu.map((r) => r.id)).toEqual(routed.slice(0, 2));
    });

    it('admission leaves QUEUED a run routed to a name no worker seen lately has, and admits it once one appears', async () => {
      const { store } = h.current;
      const team = await seedTeam(store, 10);
      const gpu = await routedRun(store, team.id, 'gpu', T0);
      const plain = await routedRun(store, team.id, undefined, T0 + 1);
      // A gpu worker seen too long ago does not count; the run behind it is admitted past it.
      await store.workers.record(sighting('w-old', 'old', ['gpu']), T0 - WORKER_SEEN_WINDOW_MS - 1000);
      await store.workers.record(sighting('w-cpu', 'cpu-1'), T0);
      expect((await store.admitQueuedRuns(team.id, T0 + 10)).map((r) => r.id)).toEqual([plain]);
      expect((await store.getRunById(gpu))?.state).toBe('QUEUED');

      // Its waiting message, then a gpu worker: admitted, and the message goes with the admission.
      const [waiting] = await store.workers.waitingRuns({ runId: gpu });
      expect(waiting).toMatchObject({ id: gpu, state: 'QUEUED', workerHost: 'gpu', statusMessage: null });
      expect(await store.workers.setWaitingMessage(waiting ?? { id: gpu, state: 'QUEUED', statusMessageText: null }, waitingForWorkerMessage('gpu', 1), T0 + 11)).toBe(true);
      await store.workers.record(sighting('w-gpu', 'gpu-box', ['gpu']), T0 + 20);
      const admitted = await store.admitQueuedRuns(team.id, T0 + 21);
      expect(admitted.map((r) => r.id)).toEqual([gpu]);
      expect(admitted[0]?.statusMessage).toBeNull();
      expect(await store.workers.waitingRuns({ runId: plain })).toEqual([]);
    });

    it('the waiting message is a compare-and-set on the state and the message read; a claim clears it', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await store.workers.record(sighting('w-a', 'a', ['gpu']), T0);
      const id = await routedRun(store, team.id, 'gpu', T0);
      await store.admitQueuedRuns(team.id, T0 + 1);
      const [read] = await store.workers.waitingRuns({ runId: id });
      expect(read?.state).toBe('PENDING');
      const first = waitingForWorkerMessage('gpu', 0);
      expect(await store.workers.setWaitingMessage({ id, state: 'PENDING', statusMessageText: null }, first, T0 + 2)).toBe(true);
      // A second writer that read the run before the first wrote misses.
      expect(await store.workers.setWaitingMessage({ id, state: 'PENDING', statusMessageText: null }, waitingForWorkerMessage('gpu', 3), T0 + 3)).toBe(false);
      // The wrong state misses too.
      expect(await store.workers.setWaitingMessage({ id, state: 'QUEUED', statusMessageText: JSON.stringify(first) }, null, T0 + 3)).toBe(false);
      const [now] = await store.workers.waitingRuns({ runId: id });
      expect(now?.statusMessage).toEqual(first);
      expect((await store.getRunById(id))?.updatedAt).toBe(T0 + 2);

      const [claimed] = await store.claimRuns({ workerId: 'w-a', workerName: 'a', workerLabels: ['gpu'], limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 4 });
      expect(claimed).toMatchObject({ id, state: 'CLAIMED', statusMessage: null, workerName: 'a' });
      expect(await store.workers.waitingRuns()).toEqual([]);
    });

    it('records workers on every claim poll (first seen kept), refreshes them on heartbeats, counts the runs they hold, forgets the gone', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await store.workers.record(sighting('w-1', 'box-1', ['gpu']), T0);
      await store.workers.record({ ...sighting('w-1', 'box-1', ['gpu', 'arm64']), capacity: 4 }, T0 + 1000);
      await store.workers.record(sighting('w-2', 'box-2'), T0 + 500);
      await routedRun(store, team.id, undefined, T0);
      await routedRun(store, team.id, 'gpu', T0 + 1);
      await store.admitQueuedRuns(team.id, T0 + 2);
      const held = await store.claimRuns({ workerId: 'w-1', workerName: 'box-1', workerLabels: ['gpu', 'arm64'], limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 1000 });
      expect(held).toHaveLength(2);

      const listed = await store.workers.list(T0 + 2000);
      expect(listed.map((w) => [w.id, w.name, w.labels, w.capacity, w.runningRuns, w.firstSeenAt, w.lastSeenAt])).toEqual([
        ['w-1', 'box-1', ['gpu', 'arm64'], 4, 2, T0, T0 + 1000],
        ['w-2', 'box-2', [], 2, 0, T0 + 500, T0 + 500],
      ]);
      // Leases that ran out are not held any more.
      expect((await store.workers.list(T0 + 1000 + LEASE_MS)).find((w) => w.id === 'w-1')?.runningRuns).toBe(0);

      // A heartbeat refreshes last seen, at most every few seconds.
      await store.workers.touch('w-2', T0 + 2000);
      expect((await store.workers.seenSince(T0 + 600)).map((w) => w.id)).toEqual(['w-1']);
      await store.workers.touch('w-2', T0 + 9000);
      expect((await store.workers.seenSince(T0 + 8000)).map((w) => w.id)).toEqual(['w-2']);

      expect(await store.workers.forget(T0 + 5000)).toBe(1);
      expect((await store.workers.list(T0 + 10_000)).map((w) => w.id)).toEqual(['w-2']);
      // The runs keep their worker's id and name.
      expect((await store.getRunById(held[0]?.id ?? ''))?.workerName).toBe('box-1');
    });

    it('a re-queued run forgets its worker', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const id = await routedRun(store, team.id, undefined, T0);
      await store.admitQueuedRuns(team.id, T0 + 1);
      await store.claimRuns({ workerId: 'w-1', workerName: 'box-1', workerLabels: [], limit: 1, leaseTtlMs: 1000, at: T0 + 2 });
      const [outcome] = await store.sweepExpiredLeases(T0 + 5000);
      expect(outcome).toMatchObject({ runId: id, to: 'PENDING' });
      expect(await store.getRunById(id)).toMatchObject({ workerId: null, workerName: null });
    });
  });
}
