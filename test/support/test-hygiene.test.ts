import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** The suite's own checks (test/support/leak-check.ts, model-server-check.ts) fail what they should: each fixture breaks one. */
const run = promisify(execFile);
const config = fileURLToPath(new URL('./hygiene-fixtures/vitest.config.ts', import.meta.url));
const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));

async function runFixture(name: string): Promise<{ code: number; output: string }> {
  return run(process.execPath, [vitest, 'run', '--config', config, name], { env: { ...process.env, CI: 'true', FORCE_COLOR: '0', NO_COLOR: '1' } }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
  );
}

describe('test hygiene', () => {
  it('fails a test file that leaves a process running, names it, and kills it', async () => {
    const outcome = await runFixture('leaky.fixture.ts');
    expect(outcome.code).not.toBe(0);
    expect(outcome.output).toContain('left 1 process(es) running');
    const pid = Number(/(\d+): sleep 300/.exec(outcome.output)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('fails a test whose scripted model server got a call it did not foresee, though the test checks nothing', async () => {
    const outcome = await runFixture('unchecked-model-call.fixture.ts');
    expect(outcome.code).not.toBe(0);
    expect(outcome.output).toContain('the scripted model server got calls its script did not foresee');
    expect(outcome.output).toMatch(/unscripted request: #1 POST \/v1\/messages/);
  });
});
