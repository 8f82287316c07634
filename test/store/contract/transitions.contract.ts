import { describe, expect, it } from 'vitest';
import { OzError } from '../../../src/core/errors.js';
import { actorsOf, isLegalTransition, RUN_STATES, type RunState, type TransitionActor } from '../../../src/core/run-state.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { newRun, runIn, seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

export function transitionContract(factory: StoreFactory): void {
  describe('transitions', () => {
    const h = useStore(factory);

    it('a transition by an actor the table does not name is refused, and nothing changes', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const cases: [RunState, RunState, TransitionActor][] = [
        ['QUEUED', 'PENDING', 'worker'], // admission is the server's
        ['CLAIMED', 'PENDING', 'worker'], // a re-queue is the sweeper's
        ['INPROGRESS', 'SUCCEEDED', 'server'], // a finish is the worker's
      ];
      for (const [from, to, by] of cases) {
        const before = await runIn(store, team.id, from);
        await expect(store.transitionRun({ runId: before.id, from, to, by, at: T0 + 2_000 })).rejects.toMatchObject({
          code: 'conflict',
          reason: 'illegal_transition',
          message: expect.stringContaining(`only the ${actorsOf(from, to).join(' or ')} may`),
        });
        expect(await store.getRunById(before.id)).toEqual(before);
      }
    });

    for (const from of RUN_STATES) {
      it(`from ${from}, every legal transition succeeds and every illegal one is refused`, async () => {
        const { store } = h.current;
        const team = await seedTeam(store);
        for (const to of RUN_STATES) {
          const before = await runIn(store, team.id, from);
          const at = T0 + 1_000;
          const attempt = store.transitionRun({ runId: before.id, from, to, by: actorsOf(from, to)[0] ?? 'server', at, statusMessage: { message: `to ${to}` } });
          if (isLegalTransition(from, to)) {
            const after = await attempt;
            expect(after.state).toBe(to);
            expect(after.stateTimestamps[to]).toBe(at);
            expect(after.updatedAt).toBe(at);
            expect(after.lastEventSeq).toBe(before.lastEventSeq + 1);
            expect(after.statusMessage).toEqual({ message: `to ${to}` });
            if (to === 'INPROGRESS') expect(after.startedAt).toBe(before.startedAt ?? at);
            const events = await store.listRunEvents(before.id, before.lastEventSeq, 10);
            expect(events).toEqual([{ runId: before.id, seq: before.lastEventSeq + 1, type: 'state', at, data: { from, to, status_message: { message: `to ${to}` } } }]);
          } else {
            await expect(attempt).rejects.toMatchObject({ code: 'conflict', reason: 'illegal_transition' });
            const unchanged = await store.getRunById(before.id);
            expect(unchanged).toEqual(before);
          }
        }
      });
    }

    it('a transition from a state the run is no longer in is refused as stale and changes nothing', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const run = await runIn(store, team.id, 'INPROGRESS');
      const error = await store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: T0 + 5 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OzError);
      expect(error).toMatchObject({ code: 'conflict', reason: 'stale_state', status: 409 });
      expect(await store.getRunById(run.id)).toEqual(run);
    });

    it('two racing finishes of one run: exactly one wins', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const run = await runIn(store, team.id, 'INPROGRESS');
      const targets: RunState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'ERROR', 'BLOCKED'];
      const results = await Promise.allSettled(
        targets.map((to) => store.transitionRun({ runId: run.id, from: 'INPROGRESS', to, by: actorsOf('INPROGRESS', to)[0] ?? 'server', at: T0 + 9 })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      const final = await store.getRunById(run.id);
      expect(final?.lastEventSeq).toBe(run.lastEventSeq + 1);
    });

    it('a transition of an unknown run is resource_not_found', async () => {
      const { store } = h.current;
      await expect(store.transitionRun({ runId: '01900000-0000-7000-8000-000000000000', from: 'QUEUED', to: 'PENDING', by: 'server', at: T0 })).rejects.toMatchObject({
        code: 'resource_not_found',
      });
    });

    it('cancelling a BLOCKED run from the server requires that no lease is live', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const { run } = await store.createRun(newRun(team.id), T0);
      await store.transitionRun({ runId: run.id, from: 'QUEUED', to: 'PENDING', by: 'server', at: T0 + 1 });
      const [claimed] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: 30_000, at: T0 + 2 });
      if (!claimed?.leaseToken) throw new Error('claim failed');
      const token = claimed.leaseToken;
      await store.transitionRun({ runId: claimed.id, from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: T0 + 3, leaseToken: token });
      await store.transitionRun({ runId: claimed.id, from: 'INPROGRESS', to: 'BLOCKED', by: 'worker', at: T0 + 4, leaseToken: token });
      await expect(store.transitionRun({ runId: claimed.id, from: 'BLOCKED', to: 'CANCELLED', by: 'server', at: T0 + 5, noLiveLeaseAt: T0 + 5 })).rejects.toMatchObject({
        code: 'conflict',
        reason: 'lease_live',
      });
      const cancelled = await store.transitionRun({
        runId: claimed.id,
        from: 'BLOCKED',
        to: 'CANCELLED',
        by: 'server',
        at: T0 + 30_002,
        noLiveLeaseAt: T0 + 30_002,
      });
      expect(cancelled.state).toBe('CANCELLED');
      expect(cancelled.leaseExpiresAt).toBeNull();
    });
  });
}
