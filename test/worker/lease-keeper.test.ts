import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseKeeper } from '../../src/worker/lease-keeper.js';
import { ProtocolClient } from '../../src/worker/protocol-client.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';
import { newRun, seedTeam } from '../support/run-fixtures.js';
import { until } from '../support/until.js';

const logger = pino({ level: 'silent' });

/** Self-fencing: the keeper stops the run before the lease it holds could expire, and never renews a lost one. */
describe('the lease keeper', () => {
  let server: InProcessApp;

  beforeAll(async () => {
    server = await startInProcessApp({ leaseTtlMs: 3000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A run claimed through the real worker protocol; returns its lease and when the claim answered. */
  async function claimOne(): Promise<{ runId: string; leaseToken: string; claimedAt: number; client: ProtocolClient }> {
    const team = await seedTeam(server.store);
    const { run } = await server.store.createRun(newRun(team.id), Date.now());
    await server.store.admitQueuedRuns(team.id, Date.now());
    const client = new ProtocolClient(server.url, server.workerSecret);
    const { runs } = await client.claim({ worker_id: 'test-worker', max_runs: 1, wait_ms: 0 });
    const claimed = runs.find((r) => r.run_id === run.id);
    if (!claimed) throw new Error('the run was not claimed');
    return { runId: run.id, leaseToken: claimed.lease_token, claimedAt: performance.now(), client };
  }

  it('renews a live lease at once and on every beat, reporting how long the run may go on', async () => {
    const { runId, leaseToken, claimedAt, client } = await claimOne();
    const renewals: number[] = [];
    let fenced: string | null = null;
    const keeper = new LeaseKeeper(
      client,
      runId,
      leaseToken,
      { leaseTtlMs: 3000, claimedAt },
      { onCancel: () => {}, onFenced: (why) => (fenced = why), onRenewed: (ms) => renewals.push(ms) },
      logger,
    );
    keeper.start();
    await until('three renewals', () => renewals.length >= 3, 10_000);
    await keeper.stop();
    expect(fenced).toBeNull();
    for (const ms of renewals) expect(ms).toBeLessThanOrEqual(3000 - keeper.marginMs);
    const run = await server.store.getRunById(runId);
    expect(run?.leaseExpiresAt).toBeGreaterThan(Date.now());
  });

  it('fences the run off before its lease ends when the server cannot be reached', async () => {
    const { runId, leaseToken, claimedAt } = await claimOne();
    // Nothing listens on port 1: every heartbeat fails at once.
    const unreachable = new ProtocolClient('http://127.0.0.1:1', 'x');
    let fencedAt: number | null = null;
    let why: string | null = null;
    const keeper = new LeaseKeeper(
      unreachable,
      runId,
      leaseToken,
      { leaseTtlMs: 3000, claimedAt },
      { onCancel: () => {}, onFenced: (w) => ((fencedAt = performance.now()), (why = w)), onRenewed: () => expect.unreachable('no renewal can succeed') },
      logger,
    );
    keeper.start();
    await until('the keeper to fence the run', () => fencedAt !== null, 10_000);
    await keeper.stop();
    expect(why).toBe('unrenewable');
    // Before the lease's end as the worker counts it (from the claim's answer), by the margin.
    expect(fencedAt as unknown as number).toBeLessThan(claimedAt + 3000);
  });

  it('counts from what the server said was left of the lease, not the whole TTL', async () => {
    const team = await seedTeam(server.store);
    const { run } = await server.store.createRun(newRun(team.id), Date.now());
    await server.store.admitQueuedRuns(team.id, Date.now());
    const { runs } = await new ProtocolClient(server.url, server.workerSecret).claim({ worker_id: 'test-worker', max_runs: 1, wait_ms: 0 });
    const claimed = runs.find((r) => r.run_id === run.id);
    expect(claimed?.lease_valid_for_ms).toBeGreaterThan(0);
    expect(claimed?.lease_valid_for_ms).toBeLessThanOrEqual(3000);
    // As if the hand-over had taken most of the lease: 1.5 s left.
    const claimedAt = performance.now();
    let fencedAt: number | null = null;
    const keeper = new LeaseKeeper(
      new ProtocolClient('http://127.0.0.1:1', 'x'),
      run.id,
      claimed?.lease_token ?? '',
      { leaseTtlMs: 3000, claimedAt, validAtClaimMs: 1500 },
      { onCancel: () => {}, onFenced: () => (fencedAt = performance.now()), onRenewed: () => expect.unreachable('no renewal can succeed') },
      logger,
    );
    keeper.start();
    await until('the keeper to fence the run', () => fencedAt !== null, 10_000);
    await keeper.stop();
    expect(fencedAt as unknown as number).toBeLessThan(claimedAt + 1500);
  });

  it('fences the run off at once when the lease is gone (409), and hears a cancel request', async () => {
    const { runId, leaseToken, claimedAt, client } = await claimOne();
    let fenced: string | null = null;
    let cancels = 0;
    const keeper = new LeaseKeeper(
      client,
      runId,
      leaseToken,
      { leaseTtlMs: 3000, claimedAt, controlWaitMs: 2000 },
      { onCancel: () => (cancels += 1), onFenced: (w) => (fenced = w), onRenewed: () => {} },
      logger,
    );
    keeper.start();
    await server.store.requestCancel(runId, Date.now());
    server.deps.hub.publish(runId);
    await until('the cancel to be heard', () => cancels > 0, 10_000);
    // The run ends under another lease holder's hand: the token is stale from now on.
    await server.store.transitionRun({ runId, from: 'CLAIMED', to: 'ERROR', by: 'server', at: Date.now() });
    await until('the keeper to fence the run', () => fenced !== null, 10_000);
    await keeper.stop();
    expect(fenced).toBe('lost');
  });
});
