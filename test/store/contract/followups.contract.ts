import { describe, expect, it } from 'vitest';
import type { Run } from '../../../src/core/run.js';
import type { Store } from '../../../src/store/store.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { newRun, seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

const LEASE_MS = 30_000;
const sighting = (id: string) => ({ id, name: id, labels: [], backend: 'direct', capacity: 2, version: '0.1.0', tokenName: 'pool' });

/** A run claimed by `workerId`, started, and finished SUCCEEDED at `at`. */
async function endedRun(store: Store, teamId: string, workerId: string, at: number): Promise<Run> {
  const { run } = await store.createRun(newRun(teamId), at);
  await store.admitQueuedRuns(teamId, at);
  const [claimed] = await store.claimRuns({ workerId, workerName: workerId, limit: 1, leaseTtlMs: LEASE_MS, at: at + 1 });
  expect(claimed?.id).toBe(run.id);
  const token = claimed?.leaseToken ?? '';
  await store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: at + 2, leaseToken: token, leaseLiveAt: at + 2 });
  return store.transitionRun({ runId: run.id, from: 'INPROGRESS', to: 'SUCCEEDED', by: 'worker', at: at + 3, leaseToken: token, leaseLiveAt: at + 3 });
}

/** Follow-ups in the store (docs/design.md "Follow-ups and executions"), on every database. */
export function followupContract(factory: StoreFactory): void {
  describe('follow-ups and executions', () => {
    const h = useStore(factory);

    it('executions follow the run: claimed, started, ended; a follow-up to the ended run starts the next one, numbered, its message in the events', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const run = await endedRun(store, team.id, 'w-1', T0);
      const result = await store.followups.add(team.id, run.id, 'and more', null, T0 + 10);
      expect(result).toMatchObject({
        startedExecution: true,
        followup: { seq: 1, execution: 2 },
        run: { state: 'QUEUED', execution: 2, attempt: 0, workerId: null, leaseToken: null },
      });
      const executions = await store.followups.executions([run.id]);
      expect(executions.map((e) => [e.number, e.state, e.workerId])).toEqual([
        [1, 'SUCCEEDED', 'w-1'],
        [2, 'QUEUED', null],
      ]);
      expect(executions[0]).toMatchObject({ claimedAt: T0 + 1, startedAt: T0 + 2, endedAt: T0 + 3 });
      const events = await store.listRunEvents(run.id, 0, 100);
      expect(events.map((e) => e.seq)).toEqual(events.map((_e, i) => i + 1));
      expect(events.slice(-2).map((e) => [e.type, e.data.to ?? e.data.text])).toEqual([
        ['state', 'QUEUED'],
        ['message', 'and more'],
      ]);
      // A second one joins the live execution.
      expect(await store.followups.add(team.id, run.id, 'also', null, T0 + 11)).toMatchObject({ startedExecution: false, followup: { seq: 2, execution: 2 } });
      // Another team's run is not found.
      const other = await seedTeam(store);
      await expect(store.followups.add(other.id, run.id, 'x', null, T0 + 12)).rejects.toMatchObject({ code: 'resource_not_found' });
    });

    it('an idle hold: only its worker claims the next execution while it stands and the worker is seen; it holds a team slot', async () => {
      const { store } = h.current;
      const team = await seedTeam(store, 1);
      await store.workers.record(sighting('w-holder'), T0);
      const run = await endedRun(store, team.id, 'w-holder', T0);
      expect(await store.followups.holdIdle(run.id, 'w-holder', 1, T0 + 600_000)).toBe(true);
      // The held slot: another run of the team waits.
      const { run: waiting } = await store.createRun(newRun(team.id), T0 + 5);
      expect(await store.admitQueuedRuns(team.id, T0 + 6)).toEqual([]);
      // The follow-up's execution: admitted (the hold no longer counts once the run is live), claimable by the holder only.
      await store.followups.add(team.id, run.id, 'go on', null, T0 + 10);
      expect((await store.admitQueuedRuns(team.id, T0 + 11)).map((r) => r.id)).toEqual([run.id]);
      expect(await store.claimRuns({ workerId: 'w-other', limit: 5, leaseTtlMs: LEASE_MS, at: T0 + 12 })).toEqual([]);
      const [mine] = await store.claimRuns({ workerId: 'w-holder', limit: 5, leaseTtlMs: LEASE_MS, at: T0 + 13 });
      expect(mine?.id).toBe(run.id);
      expect(waiting.state).toBe('QUEUED');
    });

    it("a dead holder's hold binds nobody and holds no slot; the sweep clears it", async () => {
      const { store } = h.current;
      const team = await seedTeam(store, 1);
      await store.workers.record(sighting('w-dead'), T0);
      const run = await endedRun(store, team.id, 'w-dead', T0);
      await store.followups.holdIdle(run.id, 'w-dead', 1, T0 + 3600_000);
      const later = T0 + 120_000; // the holder was last seen at T0: gone
      const { run: next } = await store.createRun(newRun(team.id), later);
      expect((await store.admitQueuedRuns(team.id, later + 1)).map((r) => r.id)).toEqual([next.id]);
      expect(await store.followups.clearLapsedIdle(later + 2)).toBe(1);
      expect((await store.getRunById(run.id))?.idleWorkerId).toBeNull();
    });

    it('follow-ups the agent never had start the next execution only after an agent that ran and ended on its own', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const ran = await endedRun(store, team.id, 'w-1', T0);
      // A follow-up recorded during execution 1 but never given (the run is ended now).
      await store.followups.add(team.id, ran.id, 'late', null, T0 + 10);
      // (add re-queued it; end that execution without its agent starting: it must not loop)
      await store.admitQueuedRuns(team.id, T0 + 11);
      const [claimed] = await store.claimRuns({ workerId: 'w-1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 12 });
      await store.transitionRun({ runId: ran.id, from: 'CLAIMED', to: 'FAILED', by: 'worker', at: T0 + 13, leaseToken: claimed?.leaseToken ?? '', leaseLiveAt: T0 + 13 });
      expect(await store.followups.continueUndelivered(ran.id, T0 + 14)).toBe(false);
      // A cancelled run stays so.
      const { run: cancelled } = await store.createRun(newRun(team.id), T0 + 20);
      await store.transitionRun({ runId: cancelled.id, from: 'QUEUED', to: 'CANCELLED', by: 'server', at: T0 + 21 });
      await store.followups.add(team.id, cancelled.id, 'x', null, T0 + 22);
      expect((await store.getRunById(cancelled.id))?.state).toBe('QUEUED');
    });

    it('keeps the latest workspace snapshot per run under its lease, and forgets those of ended runs past the retention', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const { run } = await store.createRun(newRun(team.id), T0);
      await store.admitQueuedRuns(team.id, T0);
      const [claimed] = await store.claimRuns({ workerId: 'w-1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 1 });
      const token = claimed?.leaseToken ?? '';
      await expect(store.followups.putWorkspaceSnapshot(run.id, 'not-the-token', 1, Buffer.from('x'), [], T0 + 2)).rejects.toMatchObject({ code: 'conflict' });
      await store.followups.putWorkspaceSnapshot(run.id, token, 1, Buffer.from('first'), ['a'.repeat(40)], T0 + 2);
      await store.followups.putWorkspaceSnapshot(run.id, token, 1, Buffer.from('second'), ['b'.repeat(40)], T0 + 3);
      expect(await store.followups.workspaceSnapshot(run.id)).toMatchObject({ execution: 1, bytes: 6, heads: ['b'.repeat(40)] });
      expect((await store.followups.workspaceSnapshotData(run.id))?.toString()).toBe('second');
      // A live run's snapshot is never forgotten; an ended run's is, past the retention.
      expect(await store.followups.forgetWorkspaceSnapshots(T0 + 1000)).toBe(0);
      await store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'FAILED', by: 'worker', at: T0 + 4, leaseToken: token, leaseLiveAt: T0 + 4 });
      expect(await store.followups.forgetWorkspaceSnapshots(T0 + 3)).toBe(0);
      expect(await store.followups.forgetWorkspaceSnapshots(T0 + 1000)).toBe(1);
      expect(await store.followups.workspaceSnapshot(run.id)).toBeNull();
    });
  });
}
