import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import type { StoreFactory, StoreSpec } from '../../support/store-factories.js';
import { newRun, runIn, seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

const LEASE_MS = 30_000;
const claimerScript = fileURLToPath(new URL('../../support/claimer-process.ts', import.meta.url));
const tsxLoader = createRequire(import.meta.url).resolve('tsx');

async function pendingRuns(store: Store, teamId: string, count: number, at = T0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { run } = await store.createRun(newRun(teamId, { title: `run ${i}` }), at + i);
    ids.push(run.id);
  }
  await store.admitQueuedRuns(teamId, at + count);
  return ids;
}

/** Start claimer processes, release them together, collect what each claimed. Kills them on failure. */
async function raceClaimers(spec: StoreSpec, limits: number[]): Promise<string[][]> {
  const children = limits.map((limit, i) =>
    spawn(process.execPath, ['--import', tsxLoader, claimerScript, JSON.stringify(spec), `racer-${i}`, String(limit)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const ready = new Set<number>();
  try {
    const outputs = children.map(
      (child) =>
        new Promise<string[]>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (out.startsWith('ready\n')) ready.add(child.pid ?? -1);
            if (ready.size === children.length) for (const c of children) c.stdin.end('go\n');
          });
          child.on('error', reject);
          child.on('exit', (code) => {
            if (code !== 0) return reject(new Error(`claimer exited with ${code}`));
            const last = out.trim().split('\n').pop() ?? '[]';
            resolve(JSON.parse(last) as string[]);
          });
        }),
    );
    return await Promise.all(outputs);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

export function claimContract(factory: StoreFactory): void {
  describe('claims and leases', () => {
    const h = useStore(factory);

    it('claims the oldest admitted run first, with its own lease token, and records the claim', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const ids = await pendingRuns(store, team.id, 3);
      const [first] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 100 });
      expect(first?.id).toBe(ids[0]);
      expect(first).toMatchObject({ state: 'CLAIMED', attempt: 1, workerId: 'w1', leaseExpiresAt: T0 + 100 + LEASE_MS });
      const rest = await store.claimRuns({ workerId: 'w2', limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 101 });
      expect(rest.map((r) => r.id)).toEqual(ids.slice(1));
      const tokens = new Set([first, ...rest].map((r) => r?.leaseToken));
      expect(tokens.size).toBe(3);
      for (const token of tokens) expect(token).toMatch(/^[0-9a-f]{32}$/);
      expect(await store.claimRuns({ workerId: 'w3', limit: 10, leaseTtlMs: LEASE_MS, at: T0 + 102 })).toEqual([]);
      const events = await store.listRunEvents(ids[0] ?? '', 0, 10);
      expect(events.map((e) => e.data)).toEqual([
        { from: null, to: 'QUEUED' },
        { from: 'QUEUED', to: 'PENDING' },
        { from: 'PENDING', to: 'CLAIMED' },
      ]);
    });

    it('queued runs that were never admitted are not claimable', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await store.createRun(newRun(team.id), T0);
      expect(await store.claimRuns({ workerId: 'w1', limit: 5, leaseTtlMs: LEASE_MS, at: T0 + 1 })).toEqual([]);
    });

    it('two claimer processes racing over 1,000 runs claim each run exactly once', async () => {
      const { store, spec } = h.current;
      const team = await seedTeam(store, 5000);
      const ids = await pendingRuns(store, team.id, 1000);
      const [a = [], b = []] = await raceClaimers(spec, [1, 3]);
      const all = [...a, ...b];
      expect(new Set(all).size).toBe(all.length);
      expect([...all].sort()).toEqual([...ids].sort());
      const page = await store.listRuns({
        teamId: team.id,
        filters: { states: ['CLAIMED'] },
        sortBy: 'created_at',
        sortOrder: 'asc',
        limit: 500,
      });
      expect(page.runs.every((r) => r.attempt === 1)).toBe(true);
      console.info(`claim race (${spec.kind}): racer-0 took ${a.length}, racer-1 took ${b.length}`);
    });

    it('a stale lease token is refused for renewals and transitions', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await pendingRuns(store, team.id, 1);
      const [run] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 10 });
      if (!run?.leaseToken) throw new Error('no claim');
      expect(await store.renewLease(run.id, 'not-the-token', LEASE_MS, T0 + 20)).toBe(false);
      await expect(store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: T0 + 20, leaseToken: 'not-the-token' })).rejects.toMatchObject({
        code: 'conflict',
        reason: 'stale_lease',
      });

      // The lease expires, the sweeper re-queues, another worker claims: the first token is dead.
      const swept = await store.sweepExpiredLeases(T0 + 10 + LEASE_MS);
      expect(swept).toEqual([{ runId: run.id, from: 'CLAIMED', to: 'PENDING', reason: 'lease_expired_requeued' }]);
      const [again] = await store.claimRuns({ workerId: 'w2', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 40_000 });
      expect(again).toMatchObject({ id: run.id, attempt: 2, workerId: 'w2' });
      expect(again?.leaseToken).not.toBe(run.leaseToken);
      expect(await store.renewLease(run.id, run.leaseToken, LEASE_MS, T0 + 40_001)).toBe(false);
      await expect(store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'SUCCEEDED', by: 'worker', at: T0 + 40_001, leaseToken: run.leaseToken })).rejects.toMatchObject({
        reason: 'stale_lease',
      });
    });

    it('renewing a lease moves only lease_expires_at, and an expired lease is not revived', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await pendingRuns(store, team.id, 1);
      const [run] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 10 });
      if (!run?.leaseToken) throw new Error('no claim');
      expect(await store.renewLease(run.id, run.leaseToken, LEASE_MS, T0 + 5_000)).toBe(true);
      const renewed = await store.getRunById(run.id);
      expect(renewed).toEqual({ ...run, leaseExpiresAt: T0 + 5_000 + LEASE_MS });
      expect(await store.renewLease(run.id, run.leaseToken, LEASE_MS, T0 + 5_000 + LEASE_MS)).toBe(false);
    });

    it('the sweeper re-queues once, then errors as worker_lost; in-progress runs error at once', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const [idA, idB] = await pendingRuns(store, team.id, 2);
      let t = T0 + 100;
      const claimed = await store.claimRuns({ workerId: 'w1', limit: 2, leaseTtlMs: LEASE_MS, at: t });
      const b = claimed.find((r) => r.id === idB);
      await store.transitionRun({ runId: idB ?? '', from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: t + 1, leaseToken: b?.leaseToken ?? '' });

      t += LEASE_MS;
      const first = await store.sweepExpiredLeases(t);
      expect(first.sort((x, y) => x.runId.localeCompare(y.runId))).toEqual(
        [
          { runId: idA, from: 'CLAIMED', to: 'PENDING', reason: 'lease_expired_requeued' },
          { runId: idB, from: 'INPROGRESS', to: 'ERROR', reason: 'worker_lost' },
        ].sort((x, y) => (x.runId ?? '').localeCompare(y.runId ?? '')),
      );
      expect((await store.getRunById(idB ?? ''))?.statusMessage).toMatchObject({
        error_code: 'resource_unavailable',
        retryable: true,
        reason: 'worker_lost',
      });

      await store.claimRuns({ workerId: 'w2', limit: 1, leaseTtlMs: LEASE_MS, at: t + 1 });
      expect(await store.sweepExpiredLeases(t + 1 + LEASE_MS - 1)).toEqual([]);
      expect(await store.sweepExpiredLeases(t + 1 + LEASE_MS)).toEqual([{ runId: idA, from: 'CLAIMED', to: 'ERROR', reason: 'worker_lost' }]);
      expect((await store.getRunById(idA ?? ''))?.attempt).toBe(2);
    });

    it('a cancel-requested run whose lease expires is cancelled by the sweeper', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const run = await runIn(store, team.id, 'PENDING');
      const [claimed] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 10 });
      expect(claimed?.id).toBe(run.id);
      const requested = await store.requestCancel(run.id, T0 + 20);
      expect(requested?.cancelRequestedAt).toBe(T0 + 20);
      expect((await store.requestCancel(run.id, T0 + 25))?.cancelRequestedAt).toBe(T0 + 20);
      expect(await store.sweepExpiredLeases(T0 + 10 + LEASE_MS)).toEqual([{ runId: run.id, from: 'CLAIMED', to: 'CANCELLED', reason: 'cancelled_lease_expired' }]);
      expect(await store.requestCancel(run.id, T0 + 50_000)).toBeNull();
    });

    it('concurrent sweeps resolve each expired run once', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await pendingRuns(store, team.id, 20);
      const claimed = await store.claimRuns({ workerId: 'w1', limit: 20, leaseTtlMs: LEASE_MS, at: T0 + 100 });
      for (const run of claimed) {
        await store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: T0 + 101, leaseToken: run.leaseToken ?? '' });
      }
      const sweeps = await Promise.all([1, 2, 3].map(() => store.sweepExpiredLeases(T0 + 100 + LEASE_MS)));
      expect(sweeps.flat()).toHaveLength(20);
      for (const run of claimed) {
        const events = await store.listRunEvents(run.id, 0, 100);
        expect(events.filter((e) => e.data.to === 'ERROR')).toHaveLength(1);
      }
    });

    it("a worker's event batch is appended once, retries are acknowledged, and a stale lease is refused", async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      await pendingRuns(store, team.id, 1);
      const [run] = await store.claimRuns({ workerId: 'w1', limit: 1, leaseTtlMs: LEASE_MS, at: T0 + 10 });
      if (!run?.leaseToken) throw new Error('no claim');
      const batch = [
        { type: 'output' as const, at: T0 + 11, data: { stream: 'stdout', text: 'a\n' } },
        { type: 'output' as const, at: T0 + 12, data: { stream: 'stdout', text: 'b\n' } },
      ];
      const first = await store.appendRunEventBatch(run.id, run.leaseToken, 1, batch, T0 + 13);
      expect(first).toEqual({ firstSeq: run.lastEventSeq + 1, count: 2, duplicate: false });
      expect(await store.appendRunEventBatch(run.id, run.leaseToken, 1, batch, T0 + 14)).toEqual({ ...first, duplicate: true });
      const events = await store.listRunEvents(run.id, run.lastEventSeq, 10);
      expect(events.map((e) => e.data.text)).toEqual(['a\n', 'b\n']);
      await expect(store.appendRunEventBatch(run.id, 'stale', 2, batch, T0 + 15)).rejects.toMatchObject({ code: 'conflict', reason: 'stale_lease' });
      // A lease past its expiry is no lease, even before the sweeper has resolved the run.
      await expect(store.appendRunEventBatch(run.id, run.leaseToken, 2, batch, T0 + 10 + LEASE_MS)).rejects.toMatchObject({ reason: 'stale_lease' });
      await store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'SUCCEEDED', by: 'worker', at: T0 + 20, leaseToken: run.leaseToken });
      await expect(store.appendRunEventBatch(run.id, run.leaseToken, 2, batch, T0 + 21)).rejects.toMatchObject({ reason: 'stale_lease' });
      expect(await store.listTeamsWithQueuedRuns()).toEqual([]);
      await store.createRun(newRun(team.id), T0 + 30);
      expect(await store.listTeamsWithQueuedRuns()).toEqual([team.id]);
    });

    it("admission keeps a team under its concurrency limit and does not touch other teams' runs", async () => {
      const { store } = h.current;
      const small = await seedTeam(store, 2);
      const other = await seedTeam(store, 10);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await store.createRun(newRun(small.id), T0 + i)).run.id);
      const otherRun = (await store.createRun(newRun(other.id), T0)).run;
      const admitted = await Promise.all([store.admitQueuedRuns(small.id, T0 + 10), store.admitQueuedRuns(small.id, T0 + 10)]);
      expect(
        admitted
          .flat()
          .map((r) => r.id)
          .sort(),
      ).toEqual(ids.slice(0, 2).sort());
      expect((await store.getRunById(otherRun.id))?.state).toBe('QUEUED');
      expect(await store.admitQueuedRuns(small.id, T0 + 11)).toEqual([]);
      await store.transitionRun({ runId: ids[0] ?? '', from: 'PENDING', to: 'CANCELLED', by: 'server', at: T0 + 12 });
      const next = await store.admitQueuedRuns(small.id, T0 + 13);
      expect(next.map((r) => r.id)).toEqual([ids[2]]);
    });
  });
}
