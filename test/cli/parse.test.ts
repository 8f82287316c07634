import { describe, expect, it } from 'vitest';
import { dashed, enumOption } from '../../src/cli/parse.js';

describe('enumOption', () => {
  const source = enumOption('--source', ['API', 'SCHEDULED_AGENT', 'CLI'] as const);
  const state = enumOption('--state', ['QUEUED', 'INPROGRESS'] as const, { INPROGRESS: 'in-progress' });

  it("reads Oz's dashed spellings and the API's, and returns the API's value", () => {
    expect(source('scheduled-agent')).toBe('SCHEDULED_AGENT');
    expect(source('SCHEDULED_AGENT')).toBe('SCHEDULED_AGENT');
    expect(source('scheduled_agent')).toBe('SCHEDULED_AGENT');
    expect(source('cli')).toBe('CLI');
    expect(state('in-progress')).toBe('INPROGRESS');
    expect(state('INPROGRESS')).toBe('INPROGRESS');
  });

  it('lists the dashed spellings in its error and its choices', () => {
    expect(() => source('web')).toThrow('--source: must be one of api, scheduled-agent, cli (got "web")');
    expect(state.choices).toEqual(['queued', 'in-progress']);
    expect(dashed('PULL_REQUEST')).toBe('pull-request');
  });

  it('collects a repeatable flag in order', () => {
    expect(state.repeatable('queued', state.repeatable('in-progress'))).toEqual(['INPROGRESS', 'QUEUED']);
  });
});
