import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentItem } from '../../src/api/environments.js';
import type { CreatedWorkerToken } from '../../src/api/identity.js';
import type { RunItem } from '../../src/api/runs.js';
import type { ClaimedRun, ClaimResponse } from '../../src/core/worker-protocol.js';
import { snapshotLine } from '../../src/cli/commands/environment.js';
import { startForgeDouble, type ForgeDouble } from '../support/forge-double.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';

const KEY = 'ab12cd34ef56'.padEnd(64, '7');

/** `oz environment` and `oz agent run-cloud` for warm starts: maintenance commands, --no-snapshot, the snapshot in `get`, --devcontainer. */
describe('the oz CLI for maintenance commands, cold starts, snapshots and devcontainer.json', () => {
  let server: OzServerHandle;
  let forge: ForgeDouble;
  const oz = (...args: string[]) => runOz(args, server.cliEnv);
  const getEnv = async (id: string): Promise<EnvironmentItem> => JSON.parse((await oz('e', 'get', id, '--output-format', 'json')).stdout) as EnvironmentItem;

  beforeAll(async () => {
    forge = await startForgeDouble({
      token: 'ghp_unused_by_these_tests',
      publicRepos: ['acme/web'],
      files: {
        'acme/web': {
          '.devcontainer/devcontainer.json': '{\n  // comments are fine\n  "image": "node:22",\n  "containerEnv": { "CI": "1" },\n  "postCreateCommand": "npm ci",\n}',
          'features.json': '{ "image": "node:22", "features": { "ghcr.io/devcontainers/features/node:1": { "version": "lts" } } }',
        },
      },
    });
    server = await startOzServer('sqlite', { env: { OZ_GITHUB_API_URL: forge.apiUrl }, args: ['--no-worker'] });
  });
  afterAll(async () => {
    await server?.stop();
    await forge?.close();
  });

  it('explains the new flags in --help', async () => {
    // Commander wraps the descriptions to the terminal's width.
    const help = async (...args: string[]) => (await oz(...args, '--help')).stdout.replace(/\s+/g, ' ');
    const create = await help('e', 'create');
    expect(create).toContain("-m, --maintenance-command <cmd> run in every run once setup's state is in place");
    expect(create).toContain('--agent-user <user>');
    expect(create).toContain('--devcontainer <owner/repo[:path]> build the environment from a devcontainer.json on GitHub');
    const update = (await oz('e', 'update', '--help')).stdout;
    expect(update).toContain('--maintenance-command <cmd>');
    expect(update).toContain('--remove-maintenance-command <cmd>');
    expect(await help('agent', 'run-cloud')).toContain('--no-snapshot a cold start');
  });

  it('creates, shows and edits maintenance commands like setup commands', async () => {
    const created = await oz('e', 'create', '-n', 'maint', '-c', 'npm ci', '-m', 'npm install', '--maintenance-command', 'npm run build', '--output-format', 'text');
    expect(created.stderr).toBe('');
    const id = created.stdout.trim();
    expect((await getEnv(id)).config.maintenance_commands).toEqual(['npm install', 'npm run build']);
    const pretty = (await oz('e', 'get', id)).stdout;
    expect(pretty).toMatch(/Maintenance commands:\s+npm install && npm run build/);
    expect(pretty).toMatch(/Snapshot:\s+-\n/);

    expect((await oz('e', 'update', id, '-m', 'npm test', '--remove-maintenance-command', 'npm install')).code).toBe(0);
    expect((await getEnv(id)).config).toMatchObject({ setup_commands: ['npm ci'], maintenance_commands: ['npm run build', 'npm test'] });
    const missing = await oz('e', 'update', id, '--remove-maintenance-command', 'npm install');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--remove-maintenance-command: "npm install" is not in the environment');
    const empty = await oz('e', 'update', id, '-m', '   ');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('maintenance_commands[2]');
  });

  it('dispatches a cold start with --no-snapshot, and shows the snapshot a worker reported', async () => {
    const id = (await oz('e', 'create', '-n', 'snap', '-c', 'npm ci', '--output-format', 'text')).stdout.trim();
    const cold = (await oz('agent', 'run-cloud', '-p', 'cold', '-e', id, '--no-snapshot', '--output-format', 'text')).stdout.trim();
    expect((JSON.parse((await oz('run', 'get', cold, '--output-format', 'json')).stdout) as RunItem).agent_config.snapshot).toBe(false);
    const warm = (await oz('agent', 'run-cloud', '-p', 'warm', '-e', id, '--output-format', 'text')).stdout.trim();
    expect(JSON.parse((await oz('run', 'get', warm, '--output-format', 'json')).stdout) as RunItem).not.toHaveProperty('agent_config.snapshot');

    // As a worker: claim the cold run and report the snapshot its setup left.
    const token = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: 'cli-warm' } });
    const workerKey = (token.body as CreatedWorkerToken).token;
    const claim = await api(server, 'POST', '/api/v1/worker/claim', { key: workerKey, body: { worker_id: 'cli-test', max_runs: 64, wait_ms: 0 } });
    const run = (claim.body as ClaimResponse).runs.find((r) => r.run_id === cold) as ClaimedRun;
    expect(run.snapshot).toBe(false);
    const createdAt = Date.now() - 2 * 3_600_000 - 60_000;
    const snapshot = { key: KEY, bytes: 3 * 2 ** 20 + 2 ** 19, created_at: createdAt, hits: 2 };
    const events = [{ type: 'notice', at: Date.now(), data: { level: 'info', message: 'Saved a snapshot of setup', reason: 'snapshot_saved', snapshot } }];
    const posted = await api(server, 'POST', `/api/v1/worker/runs/${cold}/events`, { key: workerKey, body: { lease_token: run.lease_token, batch_no: 1, events } });
    expect(posted.status, JSON.stringify(posted.body)).toBe(200);

    expect((await oz('e', 'get', id)).stdout).toMatch(/Snapshot:\s+ab12cd34ef56, 3\.5 MiB, 2h, 2 hits\n/);
    expect((await getEnv(id)).snapshot).toMatchObject({ key: KEY, size_bytes: 3 * 2 ** 20 + 2 ** 19, hits: 2 });
  });

  it('formats a snapshot as key, size, age and hits', () => {
    const now = Date.parse('2025-06-01T12:00:00Z');
    const at = (ms: number) => new Date(now - ms).toISOString();
    const snap = (ageMs: number) => ({ key: KEY, size_bytes: 5 * 2 ** 30, created_at: at(ageMs), hits: 0, last_used_at: at(0) });
    expect(snapshotLine(null, now)).toBe('-');
    expect(snapshotLine(snap(30_000), now)).toBe('ab12cd34ef56, 5120.0 MiB, 30s, 0 hits');
    expect(snapshotLine(snap(15 * 60_000), now)).toBe('ab12cd34ef56, 5120.0 MiB, 15m, 0 hits');
    expect(snapshotLine(snap(3 * 86_400_000), now)).toBe('ab12cd34ef56, 5120.0 MiB, 3d, 0 hits');
  });

  it('creates an environment from a devcontainer.json, flags winning over the file, and names what the file cannot have', async () => {
    const id = (await oz('e', 'create', '-n', 'dev', '--devcontainer', 'acme/web', '--output-format', 'text')).stdout.trim();
    expect((await getEnv(id)).config).toMatchObject({
      docker_image: 'node:22',
      env: { CI: '1' },
      setup_commands: [],
      maintenance_commands: ['npm ci'],
      repos: [{ url: 'https://github.com/acme/web.git' }],
    });
    const mine = (await oz('e', 'create', '-n', 'dev2', '--devcontainer', 'acme/web', '-c', 'make', '-r', 'acme/api', '--output-format', 'text')).stdout.trim();
    expect((await getEnv(mine)).config).toMatchObject({
      docker_image: 'node:22',
      setup_commands: ['make'],
      maintenance_commands: ['npm ci'],
      repos: [{ url: 'https://github.com/acme/api.git' }],
    });
    const refused = await oz('e', 'create', '-n', 'dev3', '--devcontainer', 'acme/web:features.json');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('devcontainer.features');
    expect(refused.stderr).toContain('[feature_not_available]');
    const missing = await oz('e', 'create', '-n', 'dev4', '--devcontainer', 'acme/web:nope.json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.json in the GitHub repository acme/web');
  });
});
