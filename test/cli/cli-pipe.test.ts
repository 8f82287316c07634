import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, OZ_BIN, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';

/** The CLI as the head of a pipeline whose reader stops early (`oz run list | head`). */
describe('oz output into a pipe that closes early', () => {
  let server: OzServerHandle;

  beforeAll(async () => {
    server = await startOzServer('sqlite', { args: ['--no-worker'] });
    // Enough output (about 1 MB of JSON) that the CLI is still writing when the reader has gone.
    await Promise.all(
      Array.from({ length: 250 }, () =>
        api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt: 'p'.repeat(3000), config: { harness: { type: 'command' } } } }),
      ),
    );
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it('ends quietly with status 0, no stack trace', () => {
    const result = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${OZ_BIN}" run list -L 250 --output-format json | head -c 200 > /dev/null`], {
      env: server.cliEnv,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
