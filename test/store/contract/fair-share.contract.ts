import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { newRun, seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

const LEASE_MS = 30_000;

/** `count` runs of the team, created `at`, `at + 1`, … and admitted to PENDING. */
async function pending(store: Store, teamId: string, count: number, at: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await store.createRun(newRun(teamId, { title: `run ${i}` }), at + i)).run.id);
  await store.admitQueuedRuns(teamId, at + count);
  return ids;
}

/** Claims share the workers' slots between teams (round-robin), and the new team columns round-trip. */
export function fairShareContract(factory: StoreFactory): void {
  describe('fair share of claims between teams, and team ceilings', () => {
    const h = useStore(factory);

    it("a team with a backlog does not starve another team's run: claims go round-robin across teams, oldest first within each", async () => {
      const { store } = h.current;
      const busy = await seedTeam(store, 5000);
      const quiet = await seedTeam(store, 10);
      const third = await seedTeam(store, 10);
      const backlog = await pending(store, busy.id, 300, T0);
      // Admitted later than the whole backlog: oldest-first would serve it 301st.
      const [lone] = await pending(store, quiet.id, 1, T0 + 1000);
      const pair = await pending(store, third.id, 2, T0 + 2000);

      const first = await store.claimRuns({ workerId: 'w1', limit: 4, leaseTtlMs: LEASE_MS, at: T0 + 5000 });
      // Turn 1 of every team (oldest first), then turn 2 starts with the busy team's second run.
      expect(first.map((r) => r.id).sort()).toEqual([backlog[0], lone, pair[0], backlog[1]].sort());

      // One slot at a time: the third team's second run (turn 2) comes before the busy team's third (turn 3).
      const [next] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 5001 });
      expect(next?.id).toBe(pair[1]);
      const [after] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 5002 });
      expect(after?.id).toBe(backlog[2]);

      // A run admitted now for the quiet team is served by the very next claim, ahead of 297 older runs.
      const [late] = await pending(store, quiet.id, 1, T0 + 6000);
      const [served] = await store.claimRuns({ workerId: 'w2', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 7000 });
      expect(served?.id).toBe(late);

      // Within one team the order stays oldest first, and everything is claimed exactly once.
      const rest = await store.claimRuns({ workerId: 'w3', limit: 500, leaseTtlMs: LEASE_MS, at: T0 + 8000 });
      expect(rest.map((r) => r.id)).toEqual(backlog.slice(3));
      expect(await store.claimRuns({ workerId: 'w3', limit: 5, leaseTtlMs: LEASE_MS, at: T0 + 8001 })).toEqual([]);
    });

    it('the first team is the platform team; limit ceilings and the concurrency limit are stored and changed', async () => {
      const { store } = h.current;
      const operator = await store.createTeam({ name: 'operators', maxConcurrentRuns: 4 }, T0);
      const tenant = await store.createTeam({ name: 'tenant', maxConcurrentRuns: 4, limitCeilings: { memoryBytes: 2 ** 30, cpus: 1.5 } }, T0 + 1);
      expect(operator).toMatchObject({ platform: true, limitCeilings: {} });
      expect(tenant).toMatchObject({ platform: false, limitCeilings: { memoryBytes: 2 ** 30, cpus: 1.5 } });
      expect(await store.getTeam(tenant.id)).toEqual(tenant);
      const changed = await store.updateTeam(tenant.id, { maxConcurrentRuns: 9, limitCeilings: { pids: 64, maxRuntimeMs: 60_000 } });
      expect(changed).toEqual({ ...tenant, maxConcurrentRuns: 9, limitCeilings: { pids: 64, maxRuntimeMs: 60_000 } });
      expect(await store.getTeamByName('tenant')).toEqual(changed);
      expect((await store.updateTeam(tenant.id, { limitCeilings: {} }))?.limitCeilings).toEqual({});
      expect(await store.updateTeam('no-such-team', { maxConcurrentRuns: 2 })).toBeNull();
    });

    it("an environment records who last changed it; the server's own writes (setup_failed) do not", async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const env = await store.createEnvironment(
        {
          teamId: team.id,
          scope: { type: 'team' },
          creatorId: 'user-a',
          name: 'shared',
          description: null,
          config: { repos: [], setupCommands: [], env: {}, network: 'off', secrets: [], limits: {} },
        },
        T0,
      );
      expect(env.updatedBy).toBe('user-a');
      expect((await store.updateEnvironment(team.id, env.id, { updatedBy: 'user-b', name: 'renamed' }, T0 + 1))?.updatedBy).toBe('user-b');
      expect((await store.updateEnvironment(team.id, env.id, { setupFailed: true }, T0 + 2))?.updatedBy).toBe('user-b');
      expect((await store.getEnvironment(team.id, env.id))?.updatedBy).toBe('user-b');
    });
  });
}
