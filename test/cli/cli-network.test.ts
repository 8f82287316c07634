import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentItem } from '../../src/api/environments.js';
import type { CreatedWorkerToken } from '../../src/api/identity.js';
import type { ClaimedRun, ClaimResponse } from '../../src/core/worker-protocol.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';

/** `oz environment --network allowlist --allow-*` and `oz run get --network`, as a user types them. */
describe('the oz CLI for network policy and the network audit', () => {
  let server: OzServerHandle;
  const oz = (...args: string[]) => runOz(args, server.cliEnv);
  const getEnv = async (id: string): Promise<EnvironmentItem> => JSON.parse((await oz('e', 'get', id, '--output-format', 'json')).stdout) as EnvironmentItem;

  beforeAll(async () => {
    server = await startOzServer('sqlite', { args: ['--no-worker'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('explains the policies and the rule syntax in --help', async () => {
    const help = (await oz('e', 'create', '--help')).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--network <policy> off (no network), allowlist (only --allow-domain/--allow-preset hosts');
    expect(help).toContain('--allow-domain <domain> under allowlist: a host its runs may reach, example.com or *.example.com, optionally :port');
    expect(help).toContain('--allow-preset <name>');
    expect(help).toContain('--allow-internal-range <cidr> admins only');
    const update = (await oz('e', 'update', '--help')).stdout;
    expect(update).toContain('--remove-allow-domain <domain>');
    expect((await oz('run', 'get', '--help')).stdout).toContain('--network');
  });

  it('creates and edits an allowlist, refusing a bad rule by its flag before any request', async () => {
    const created = await oz(
      'e',
      'create',
      '-n',
      'web',
      '--network',
      'allowlist',
      '--allow-preset',
      'npm',
      '--allow-domain',
      'API.example.com',
      '--allow-domain',
      '*.cdn.example.net:8443',
      '--output-format',
      'text',
    );
    expect(created.stderr).toBe('');
    const id = created.stdout.trim();
    expect((await getEnv(id)).config).toMatchObject({ network: 'allowlist', allow_presets: ['npm'], allow_domains: ['api.example.com', '*.cdn.example.net:8443'] });
    expect((await oz('e', 'get', id)).stdout).toMatch(/Allowed domains:\s+preset:npm, api\.example\.com, \*\.cdn\.example\.net:8443\n/);

    expect((await oz('e', 'update', id, '--allow-preset', 'pypi', '--remove-allow-domain', 'api.example.com', '--allow-domain', 'files.example.org')).code).toBe(0);
    expect((await getEnv(id)).config).toMatchObject({ allow_presets: ['npm', 'pypi'], allow_domains: ['*.cdn.example.net:8443', 'files.example.org'] });

    const bad = await oz('e', 'create', '-n', 'bad', '--network', 'allowlist', '--allow-domain', 'http://example.com/');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--allow-domain: "http://example.com/" is not a domain rule');
    const policy = await oz('e', 'create', '-n', 'bad', '--network', 'sometimes');
    expect(policy.code).toBe(2);
    expect(policy.stderr).toMatch(/--network.*off, allowlist, on/);
    const preset = await oz('e', 'create', '-n', 'bad', '--network', 'allowlist', '--allow-preset', 'cobol');
    expect(preset.code).toBe(1);
    expect(preset.stderr).toContain('allow_presets: no preset named "cobol"');
    const gone = await oz('e', 'update', id, '--remove-allow-preset', 'go');
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('--remove-allow-preset: "go" is not in the environment');
    expect((await oz('e', 'list', '--output-format', 'json')).stdout).not.toContain('"bad"');
    // Rules under another policy are kept, and the CLI says they are unused.
    const off = await oz('e', 'create', '-n', 'off-with-rules', '--network', 'on', '--allow-domain', 'example.com');
    expect(off.code).toBe(0);
    expect(off.stderr).toContain("note: the allowed domains and presets apply under --network allowlist; this environment's network is on");
  });

  it('prints the audit of a run with oz run get --network, as a table and as JSON', async () => {
    const id = (await oz('e', 'create', '-n', 'audited', '--network', 'allowlist', '--allow-preset', 'npm', '--output-format', 'text')).stdout.trim();
    const runId = (await oz('agent', 'run-cloud', '-p', 'install', '-e', id, '--harness', 'command', '--output-format', 'text')).stdout.trim();
    expect((await oz('run', 'get', runId, '--network')).stdout).toContain('Network: nothing reported yet.');

    const token = await api(server, 'POST', '/api/v1/worker-tokens', { key: server.adminKey, body: { name: 'cli-network' } });
    const workerKey = (token.body as CreatedWorkerToken).token;
    const claim = await api(server, 'POST', '/api/v1/worker/claim', { key: workerKey, body: { worker_id: 'cli-test', max_runs: 8, wait_ms: 0 } });
    const run = (claim.body as ClaimResponse).runs.find((r) => r.run_id === runId) as ClaimedRun;
    expect(run.network?.allow).toContain('registry.npmjs.org');
    await api(server, 'POST', `/api/v1/worker/runs/${runId}/start`, { key: workerKey, body: { lease_token: run.lease_token } });
    const audit = {
      policy: 'allowlist',
      hosts: [
        { host: 'registry.npmjs.org', port: 443, connections: 3, denied: 0, bytes_sent: 4200, bytes_received: 39_100 },
        { host: 'pypi.org', port: 443, connections: 0, denied: 2, bytes_sent: 0, bytes_received: 0, denied_reason: 'not in the allowlist' },
      ],
      other: { connections: 0, denied: 0, bytes_sent: 0, bytes_received: 0 },
    };
    const finished = await api(server, 'POST', `/api/v1/worker/runs/${runId}/finish`, {
      key: workerKey,
      body: { lease_token: run.lease_token, state: 'SUCCEEDED', network_audit: audit },
    });
    expect(finished.status, JSON.stringify(finished.body)).toBe(200);

    const pretty = (await oz('run', 'get', runId, '--network')).stdout;
    expect(pretty).toContain('Network: allowlist');
    expect(pretty).toMatch(/registry\.npmjs\.org:443\s+3\s+0\s+4\.1 KiB\s+38\.2 KiB/);
    expect(pretty).toMatch(/pypi\.org:443\s+0\s+2 \(not in the allowlist\)\s+0 B\s+0 B/);
    expect(JSON.parse((await oz('run', 'get', runId, '--network', '--output-format', 'json')).stdout)).toEqual({ run_id: runId, ...audit });
    const both = await oz('run', 'get', runId, '--network', '--conversation');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('choose one');
  });
});
