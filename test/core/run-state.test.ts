import { describe, expect, it } from 'vitest';
import { cliStateName, isLegalTransition, isTerminal, parseCliStateName, RUN_STATES, TERMINAL_STATES, TRANSITIONS } from '../../src/core/run-state.js';

describe('the run state machine', () => {
  it('has exactly the transitions of the lifecycle table', () => {
    const pairs = TRANSITIONS.map((t) => `${t.from}>${t.to}`).sort();
    const expected = [
      'QUEUED>PENDING',
      'QUEUED>CANCELLED',
      'QUEUED>ERROR',
      'PENDING>CLAIMED',
      'PENDING>CANCELLED',
      'PENDING>ERROR',
      'CLAIMED>PENDING',
      'CLAIMED>INPROGRESS',
      'CLAIMED>SUCCEEDED',
      'CLAIMED>FAILED',
      'CLAIMED>CANCELLED',
      'CLAIMED>ERROR',
      'INPROGRESS>BLOCKED',
      'INPROGRESS>SUCCEEDED',
      'INPROGRESS>FAILED',
      'INPROGRESS>CANCELLED',
      'INPROGRESS>ERROR',
      'BLOCKED>INPROGRESS',
      'BLOCKED>SUCCEEDED',
      'BLOCKED>FAILED',
      'BLOCKED>CANCELLED',
      'BLOCKED>ERROR',
      // A follow-up to an ended run: its next execution.
      'SUCCEEDED>QUEUED',
      'FAILED>QUEUED',
      'ERROR>QUEUED',
      'CANCELLED>QUEUED',
    ].sort();
    expect(pairs).toEqual(expected);
    expect(new Set(pairs).size).toBe(pairs.length);
  });

  it('leaves a terminal state only through a follow-up, by the server, to QUEUED', () => {
    for (const from of TERMINAL_STATES) {
      for (const to of RUN_STATES) expect(isLegalTransition(from, to)).toBe(to === 'QUEUED');
      expect(isLegalTransition(from, 'QUEUED', 'server')).toBe(true);
      expect(isLegalTransition(from, 'QUEUED', 'worker')).toBe(false);
      expect(isLegalTransition(from, 'QUEUED', 'sweeper')).toBe(false);
    }
  });

  it('knows who may perform each transition', () => {
    expect(isLegalTransition('CLAIMED', 'PENDING', 'sweeper')).toBe(true);
    expect(isLegalTransition('CLAIMED', 'PENDING', 'worker')).toBe(false);
    expect(isLegalTransition('QUEUED', 'CANCELLED', 'server')).toBe(true);
    expect(isLegalTransition('INPROGRESS', 'CANCELLED', 'server')).toBe(false);
    expect(isLegalTransition('BLOCKED', 'CANCELLED', 'server')).toBe(true);
    expect(isLegalTransition('PENDING', 'CLAIMED', 'worker')).toBe(true);
    for (const from of ['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS', 'BLOCKED'] as const) {
      for (const by of ['server', 'worker', 'sweeper'] as const) expect(isLegalTransition(from, 'ERROR', by)).toBe(true);
    }
  });

  it('spells states the way the CLI does and reads them back', () => {
    expect(cliStateName('INPROGRESS')).toBe('in-progress');
    expect(cliStateName('QUEUED')).toBe('queued');
    for (const state of RUN_STATES) expect(parseCliStateName(cliStateName(state))).toBe(state);
    expect(parseCliStateName('In_Progress')).toBe('INPROGRESS');
    expect(parseCliStateName('running')).toBeUndefined();
    expect(isTerminal('ERROR')).toBe(true);
    expect(isTerminal('BLOCKED')).toBe(false);
  });
});
