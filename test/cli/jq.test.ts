import { describe, expect, it } from 'vitest';
import { applyJq } from '../../src/cli/jq.js';

describe('--jq', () => {
  const run = { run_id: 'r1', state: 'SUCCEEDED', usage: { steps: 3 }, artifacts: [{ artifact_type: 'PULL_REQUEST', data: { url: 'https://x/pull/1' } }] };

  it('prints top-level strings unquoted, other values as JSON, one result per line', async () => {
    expect(await applyJq(run, '.run_id')).toBe('r1\n');
    expect(await applyJq(run, '.usage.steps')).toBe('3\n');
    expect(await applyJq(run, '.artifacts[].data.url, .state')).toBe('https://x/pull/1\nSUCCEEDED\n');
    expect(await applyJq(run, '.usage')).toBe('{\n  "steps": 3\n}\n');
    expect(await applyJq(run, 'empty')).toBe('');
  });

  it("refuses a filter that does not compile as a usage error with jq's own message", async () => {
    await expect(applyJq(run, '.a |||')).rejects.toThrow(/^--jq: syntax error, unexpected '\|'/);
  });

  it('reports a runtime error of the filter', async () => {
    await expect(applyJq(run, 'error("boom")')).rejects.toThrow(/boom/);
  });
});
