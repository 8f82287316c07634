import { actorsOf } from '../../src/core/run-state.js';
import type { Team } from '../../src/core/identity.js';
import type { RunState } from '../../src/core/run-state.js';
import type { Run } from '../../src/core/run.js';
import type { NewRun, Store } from '../../src/store/store.js';

export const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);

let teamCounter = 0;
export async function seedTeam(store: Store, maxConcurrentRuns = 1000): Promise<Team> {
  teamCounter += 1;
  return store.createTeam({ name: `team-${teamCounter}-${Math.random().toString(36).slice(2, 8)}`, maxConcurrentRuns }, T0);
}

export function newRun(teamId: string, overrides: Partial<NewRun> = {}): NewRun {
  return {
    teamId,
    creatorId: null,
    title: 'a run',
    prompt: 'echo hello',
    source: 'API',
    executionLocation: 'REMOTE',
    environmentId: null,
    schedule: null,
    parentRunId: null,
    skillSpec: null,
    config: { harness: { type: 'command' } },
    ...overrides,
  };
}

/** The legal path from a new run to each state. */
export const PATH_TO: Record<RunState, RunState[]> = {
  QUEUED: [],
  PENDING: ['PENDING'],
  CLAIMED: ['PENDING', 'CLAIMED'],
  INPROGRESS: ['PENDING', 'CLAIMED', 'INPROGRESS'],
  BLOCKED: ['PENDING', 'CLAIMED', 'INPROGRESS', 'BLOCKED'],
  SUCCEEDED: ['PENDING', 'CLAIMED', 'INPROGRESS', 'SUCCEEDED'],
  FAILED: ['PENDING', 'CLAIMED', 'INPROGRESS', 'FAILED'],
  ERROR: ['ERROR'],
  CANCELLED: ['CANCELLED'],
};

/** Create a run and drive it to `state` through legal transitions, one ms apart. */
export async function runIn(store: Store, teamId: string, state: RunState, at = T0): Promise<Run> {
  let { run } = await store.createRun(newRun(teamId), at);
  let t = at;
  for (const to of PATH_TO[state]) {
    t += 1;
    run = await store.transitionRun({ runId: run.id, from: run.state, to, by: actorsOf(run.state, to)[0] ?? 'server', at: t });
  }
  return run;
}
