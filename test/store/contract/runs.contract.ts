import { describe, expect, it } from 'vitest';
import type { ListRunsQuery, Run, RunFilters } from '../../../src/core/run.js';
import type { Store } from '../../../src/store/store.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { newRun, runIn, seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

/** Page through a listing, calling `between` after every page. */
async function pageAll(store: Store, query: Omit<ListRunsQuery, 'cursor'>, between?: (page: number) => Promise<void>): Promise<Run[]> {
  const seen: Run[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const result = await store.listRuns({ ...query, ...(cursor ? { cursor } : {}) });
    seen.push(...result.runs);
    if (!result.nextCursor) return seen;
    cursor = result.nextCursor;
    await between?.(page);
  }
  throw new Error('pagination did not end');
}

export function runContract(factory: StoreFactory): void {
  describe('runs', () => {
    const h = useStore(factory);

    it('a new run is QUEUED with its first state event', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const { run, created } = await store.createRun(newRun(team.id, { title: 'hello', config: { harness: { type: 'oz' }, modelId: 'anthropic/x', name: 'nightly' } }), T0);
      expect(created).toBe(true);
      expect(run).toMatchObject({ state: 'QUEUED', title: 'hello', attempt: 0, createdAt: T0, updatedAt: T0, lastEventSeq: 1 });
      expect(run.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(run.stateTimestamps).toEqual({ QUEUED: T0 });
      expect(await store.getRun(team.id, run.id)).toEqual(run);
    });

    it("another team's run is invisible through the team-scoped read", async () => {
      const { store } = h.current;
      const mine = await seedTeam(store);
      const theirs = await seedTeam(store);
      const { run } = await store.createRun(newRun(theirs.id), T0);
      expect(await store.getRun(mine.id, run.id)).toBeNull();
      const page = await store.listRuns({ teamId: mine.id, filters: {}, sortBy: 'updated_at', sortOrder: 'desc', limit: 10 });
      expect(page.runs).toEqual([]);
    });

    it('the same idempotency key and body return the same run; another body is refused', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const key = { key: 'abc', requestHash: 'h1' };
      const first = await store.createRun(newRun(team.id), T0, key);
      const second = await store.createRun(newRun(team.id), T0 + 5, key);
      expect(second).toEqual({ run: first.run, created: false });
      await expect(store.createRun(newRun(team.id), T0 + 6, { key: 'abc', requestHash: 'h2' })).rejects.toMatchObject({
        code: 'conflict',
        reason: 'idempotency_key_reused',
        status: 409,
      });
      const other = await seedTeam(store);
      const elsewhere = await store.createRun(newRun(other.id), T0, key);
      expect(elsewhere.created).toBe(true);
      const page = await store.listRuns({ teamId: team.id, filters: {}, sortBy: 'created_at', sortOrder: 'asc', limit: 10 });
      expect(page.runs).toHaveLength(1);
    });

    it('concurrent creates with one idempotency key make one run', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const results = await Promise.all(Array.from({ length: 8 }, () => store.createRun(newRun(team.id), T0, { key: 'same', requestHash: 'h' })));
      expect(new Set(results.map((r) => r.run.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
    });

    for (const [sortBy, sortOrder] of [
      ['updated_at', 'desc'],
      ['created_at', 'asc'],
      ['title', 'asc'],
      ['agent', 'desc'],
      ['agent', 'asc'],
    ] as const) {
      it(`paging by ${sortBy} ${sortOrder} never skips or repeats a row while rows are inserted`, async () => {
        const { store } = h.current;
        const team = await seedTeam(store);
        const original: string[] = [];
        for (let i = 0; i < 47; i++) {
          // Few distinct sort values, so ties must be broken by run id.
          const { run } = await store.createRun(newRun(team.id, { title: `title ${i % 5}`, skillSpec: i % 3 === 0 ? null : `o/r:skill${i % 4}` }), T0 + Math.floor(i / 4));
          original.push(run.id);
        }
        let inserted = 0;
        const seen = await pageAll(store, { teamId: team.id, filters: {}, sortBy, sortOrder, limit: 6 }, async (page) => {
          for (let j = 0; j < 3; j++) {
            await store.createRun(newRun(team.id, { title: `title ${(page + j) % 5}`, skillSpec: j === 0 ? null : 'o/r:new' }), T0 + 1000 + page);
            inserted++;
          }
        });
        const ids = seen.map((r) => r.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of original) expect(ids).toContain(id);
        expect(inserted).toBeGreaterThan(10);
        // The order is the requested one.
        const keys = seen.map((r) => (sortBy === 'title' ? r.title : sortBy === 'created_at' ? r.createdAt : sortBy === 'updated_at' ? r.updatedAt : r.skillSpec));
        if (sortBy !== 'agent') {
          const sorted = [...keys].sort((a, b) => (a! < b! ? -1 : a! > b! ? 1 : 0));
          expect(keys).toEqual(sortOrder === 'asc' ? sorted : sorted.reverse());
        } else {
          // Runs without a skill come last in either direction.
          const firstNull = keys.indexOf(null);
          expect(keys.slice(firstNull).every((k) => k === null)).toBe(true);
        }
      });
    }

    it('a cursor reused with other filters or another sort is refused naming cursor', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      for (let i = 0; i < 3; i++) await store.createRun(newRun(team.id), T0 + i);
      const page = await store.listRuns({ teamId: team.id, filters: {}, sortBy: 'updated_at', sortOrder: 'desc', limit: 1 });
      expect(page.nextCursor).toBeTruthy();
      const cursor = page.nextCursor ?? '';
      await expect(store.listRuns({ teamId: team.id, filters: { states: ['QUEUED'] }, sortBy: 'updated_at', sortOrder: 'desc', limit: 1, cursor })).rejects.toMatchObject({
        code: 'invalid_request',
        reason: 'cursor',
      });
      await expect(store.listRuns({ teamId: team.id, filters: {}, sortBy: 'updated_at', sortOrder: 'asc', limit: 1, cursor })).rejects.toMatchObject({
        code: 'invalid_request',
        reason: 'cursor',
      });
      await expect(store.listRuns({ teamId: team.id, filters: {}, sortBy: 'updated_at', sortOrder: 'desc', limit: 1, cursor: 'garbage!' })).rejects.toMatchObject({
        code: 'invalid_request',
        reason: 'cursor',
      });
      const next = await store.listRuns({ teamId: team.id, filters: {}, sortBy: 'updated_at', sortOrder: 'desc', limit: 5, cursor });
      expect(next.runs).toHaveLength(2);
      expect(next.nextCursor).toBeNull();
    });

    it("every filter of the spec's list selects exactly the matching runs", async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const mk = async (over: Parameters<typeof newRun>[1], at: number) => (await store.createRun(newRun(team.id, over), at)).run;
      const plain = await mk({}, T0);
      const named = await mk(
        { title: 'Fix the LOGIN form', config: { harness: { type: 'oz' }, name: 'nightly', modelId: 'anthropic/m1' }, creatorId: 'u1', source: 'CLI' },
        T0 + 10,
      );
      const scheduled = await mk({ schedule: { scheduleId: 's1', scheduleName: 'nightly', cronSchedule: '0 3 * * *' }, source: 'SCHEDULED_AGENT', environmentId: 'e1' }, T0 + 20);
      const child = await mk({ parentRunId: plain.id, prompt: '100% sure_thing', skillSpec: 'o/r:deploy' }, T0 + 30);
      const grandchild = await mk({ parentRunId: child.id, executionLocation: 'LOCAL' }, T0 + 40);
      await store.transitionRun({ runId: named.id, from: 'QUEUED', to: 'PENDING', by: 'server', at: T0 + 50 });
      await store.addRunArtifact(scheduled.id, 'PULL_REQUEST', { url: 'https://example.invalid/pr/1', branch: 'oz/x' }, T0 + 60);

      const ids = async (filters: RunFilters) => (await store.listRuns({ teamId: team.id, filters, sortBy: 'created_at', sortOrder: 'asc', limit: 50 })).runs.map((r) => r.id);
      expect(await ids({ states: ['PENDING'] })).toEqual([named.id]);
      expect(await ids({ states: ['PENDING', 'QUEUED'] })).toHaveLength(5);
      expect(await ids({ name: 'nightly' })).toEqual([named.id]);
      expect(await ids({ modelId: 'anthropic/m1' })).toEqual([named.id]);
      expect(await ids({ creatorId: 'u1' })).toEqual([named.id]);
      expect(await ids({ source: 'SCHEDULED_AGENT' })).toEqual([scheduled.id]);
      expect(await ids({ executionLocation: 'LOCAL' })).toEqual([grandchild.id]);
      expect(await ids({ createdAfter: T0 + 10, createdBefore: T0 + 40 })).toEqual([scheduled.id, child.id]);
      expect(await ids({ updatedAfter: T0 + 40 })).toEqual([named.id]);
      expect(await ids({ environmentId: 'e1' })).toEqual([scheduled.id]);
      expect(await ids({ scheduleId: 's1' })).toEqual([scheduled.id]);
      expect(await ids({ skillSpec: 'o/r:deploy' })).toEqual([child.id]);
      expect(await ids({ ancestorRunId: plain.id })).toEqual([child.id, grandchild.id]);
      expect(await ids({ artifactType: 'PULL_REQUEST' })).toEqual([scheduled.id]);
      expect(await ids({ query: 'login' })).toEqual([named.id]);
      expect(await ids({ query: '100%' })).toEqual([child.id]);
      expect(await ids({ query: 'e_t' })).toEqual([child.id]);
      // '_' and '%' are literal: unescaped, 'o_h' would match every "echo hello" prompt.
      expect(await ids({ query: 'o_h' })).toEqual([]);
      expect(await ids({ query: 'DEPLOY' })).toEqual([child.id]);
    });

    it('events get consecutive sequence numbers, also when appended concurrently', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const run = await runIn(store, team.id, 'INPROGRESS');
      const batches = await Promise.all(
        Array.from({ length: 10 }, (_, b) =>
          store.appendRunEvents(
            run.id,
            Array.from({ length: 5 }, (__, i) => ({ type: 'output' as const, at: T0 + b, data: { stream: 'stdout', text: `${b}.${i}\n` } })),
          ),
        ),
      );
      const seqs = batches
        .flat()
        .map((e) => e.seq)
        .sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => run.lastEventSeq + 1 + i));
      const stored = await store.listRunEvents(run.id, run.lastEventSeq, 1000);
      expect(stored.map((e) => e.seq)).toEqual(seqs);
      expect(await store.listRunEvents(run.id, run.lastEventSeq + 45, 3)).toHaveLength(3);
      const after = await store.getRunById(run.id);
      expect(after?.lastEventSeq).toBe(run.lastEventSeq + 50);
      expect(after?.updatedAt).toBe(run.updatedAt);
      await expect(store.appendRunEvents('01900000-0000-7000-8000-000000000000', [{ type: 'notice', at: T0, data: {} }])).rejects.toMatchObject({
        code: 'resource_not_found',
      });
    });
  });
}
