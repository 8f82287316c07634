import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtocolClient } from '../../src/worker/protocol-client.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';
import { newRun, seedTeam } from '../support/run-fixtures.js';

/** One run of a claim that cannot be handed over ends ERROR on its own; the others reach the worker. */
describe('a claim with a run that cannot be handed over', () => {
  let server: InProcessApp;

  beforeAll(async () => {
    server = await startInProcessApp();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('ends that run ERROR claim_handover_failed and hands over the rest', async () => {
    const team = await seedTeam(server.store);
    const now = Date.now();
    // An environment row this server cannot read (its config is not JSON): the hand-over of its run throws.
    const env = await server.store.createEnvironment(
      {
        teamId: team.id,
        scope: { type: 'team' },
        creatorId: null,
        name: 'torn',
        description: null,
        config: { repos: [], setupCommands: [], env: {}, network: 'off', secrets: [], limits: {} },
      },
      now,
    );
    await server.store.db.updateTable('environments').set({ config: '{not json' }).where('id', '=', env.id).execute();
    const broken = (await server.store.createRun(newRun(team.id, { environmentId: env.id }), now)).run;
    const fine = (await server.store.createRun(newRun(team.id), now)).run;
    await server.store.admitQueuedRuns(team.id, now);

    const { runs } = await new ProtocolClient(server.url, server.workerSecret).claim({ worker_id: 'w', max_runs: 5, wait_ms: 0 });
    expect(runs.map((r) => r.run_id)).toEqual([fine.id]);
    const ended = await server.store.getRunById(broken.id);
    expect(ended?.state).toBe('ERROR');
    expect(ended?.statusMessage).toMatchObject({ error_code: 'internal_error', reason: 'claim_handover_failed', retryable: true });
  });
});
