import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentItem } from '../../src/api/environments.js';
import { BUILTIN_PRESETS } from '../../src/core/network-policy.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import { ProtocolClient } from '../../src/worker/protocol-client.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';

/**
 * The network fields from the API's side (docs/network.md): each checked with
 * a 400 naming it, presets against the server's, internal ranges an admin's
 * only; the claim carries the resolved network; the audit a worker reports is
 * kept with the run, added up over executions, and another team sees a 404.
 */
describe('environment network fields, the claimed network and the run audit', () => {
  let server: InProcessApp;
  let admin: string;
  let member: string;
  let stranger: string;

  async function key(team: string, role: 'admin' | 'member'): Promise<string> {
    const now = Date.now();
    const t = (await server.store.getTeamByName(team)) ?? (await server.store.createTeam({ name: team, maxConcurrentRuns: 5 }, now));
    const user = await server.store.createUser({ teamId: t.id, email: `${Math.random().toString(36).slice(2)}@${team}.test`, displayName: null, role }, now);
    const minted = mintCredential(API_KEY_PREFIX);
    await server.store.createApiKey({ teamId: t.id, userId: user.id, name: 'k', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
    return minted.secret;
  }
  const call = (method: 'GET' | 'POST' | 'PATCH', url: string, who: string, payload?: unknown) =>
    server.app.inject({ method, url: `/api/v1${url}`, headers: { authorization: `Bearer ${who}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });

  beforeAll(async () => {
    server = await startInProcessApp({
      network: { presets: { ...BUILTIN_PRESETS, npm: ['npm.mirror.example.com'] }, defaultPolicy: 'allowlist', defaultPresets: ['npm'] },
    });
    admin = await key('alpha', 'admin');
    member = await key('alpha', 'member');
    stranger = await key('beta', 'member');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('names the field and the entry of a bad rule, preset or range, and writes nothing', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ network: 'sometimes' }, /network: must be "off", "allowlist" or "on"/],
      [{ allow_domains: ['ok.example.com', '*.com'] }, /allow_domains\[1\]: "\*\.com" is not a domain rule \(a wildcard needs a suffix of two labels/],
      [{ allow_domains: ['10.0.0.1'] }, /allow_domains\[0\]: .*an address is not a domain/],
      [{ allow_domains: ['example.com:99999'] }, /the port must be 1\.\.65535/],
      [{ allow_domains: ['exa mple.com'] }, /not a host name/],
      [{ allow_presets: ['NPM!'] }, /allow_presets\[0\]: "NPM!" is not a preset name/],
      [{ allow_presets: ['npm', 'cobol'] }, /allow_presets: no preset named "cobol"; this server has crates, debian, github/],
      [{ allow_presets: ['constructor'] }, /allow_presets: no preset named "constructor"/],
      [{ allow_internal_ranges: ['10.0.0.0/4'] }, /allow_internal_ranges\[0\]: .*not an internal range/],
      [{ allow_internal_ranges: ['not-an-address'] }, /not an IP address/],
      [{ allow_internal_ranges: ['8.8.8.0/24'] }, /allow_internal_ranges\[0\]: "8\.8\.8\.0\/24" is a public range/],
      [{ allow_internal_ranges: ['127.0.0.1/32'] }, /is loopback: never reachable from a run/],
      [{ allow_internal_ranges: ['169.254.169.254'] }, /is link-local \(cloud metadata\): never reachable/],
      [{ allow_domains: ['https://example.com/path'] }, /a URL or a path is not a rule: write the host alone/],
    ];
    const before = (await call('GET', '/agent/environments', admin)).json<{ environments: unknown[] }>().environments.length;
    for (const [body, message] of cases) {
      const response = await call('POST', '/agent/environments', admin, { name: 'bad', ...body });
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json<{ detail: string }>().detail, JSON.stringify(body)).toMatch(message);
    }
    expect((await call('GET', '/agent/environments', admin)).json<{ environments: unknown[] }>().environments.length).toBe(before);
  });

  it("an environment without a policy takes the deployment's default and its presets; rules are kept lowercase and once", async () => {
    const created = await call('POST', '/agent/environments', member, { name: 'defaulted' });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json<EnvironmentItem>().config).toMatchObject({ network: 'allowlist', allow_presets: ['npm'], allow_domains: [], allow_internal_ranges: [] });
    const own = await call('POST', '/agent/environments', member, {
      name: 'own',
      network: 'allowlist',
      allow_domains: ['API.Example.com', 'api.example.com', '*.cdn.example.net:8443'],
    });
    expect(own.json<EnvironmentItem>().config).toMatchObject({ network: 'allowlist', allow_domains: ['api.example.com', '*.cdn.example.net:8443'], allow_presets: [] });
  });

  it('only an admin may set or change internal ranges, or change an environment that has them', async () => {
    const refused = await call('POST', '/agent/environments', member, { name: 'lan', network: 'on', allow_internal_ranges: ['10.20.0.0/16'] });
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ detail: string }>().detail).toMatch(/allow_internal_ranges: only an admin/);
    const made = await call('POST', '/agent/environments', admin, { name: 'lan', network: 'on', allow_internal_ranges: ['10.20.1.7/16', 'fd00:1::5/48'] });
    expect(made.statusCode, made.body).toBe(201);
    // Stored as the network address.
    expect(made.json<EnvironmentItem>().config.allow_internal_ranges).toEqual(['10.20.0.0/16', 'fd00:1::/48']);
    const id = made.json<{ uid: string }>().uid;
    expect((await call('PATCH', `/agent/environments/${id}`, member, { allow_internal_ranges: [] })).statusCode).toBe(403);
    expect((await call('PATCH', `/agent/environments/${id}`, member, { allow_internal_ranges: ['10.99.0.0/16'] })).statusCode).toBe(403);
    // Nor anything else of it: the grant was for what the admin saw.
    const changed = await call('PATCH', `/agent/environments/${id}`, member, { setup_commands: ['curl http://10.20.0.9/'] });
    expect(changed.statusCode).toBe(403);
    expect(changed.json<{ detail: string }>().detail).toMatch(/only an admin may change it/);
    const renamed = await call('PATCH', `/agent/environments/${id}`, admin, { name: 'lan-2' });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json<EnvironmentItem>().config.allow_internal_ranges).toEqual(['10.20.0.0/16', 'fd00:1::/48']);
    expect((await call('GET', `/agent/environments/${id}`, admin)).json<EnvironmentItem>().config.setup_commands).toEqual([]);
  });

  it("the claim carries the resolved network, presets expanded from the server's; the finish's audit is kept and added up; another team sees 404", async () => {
    const env = await call('POST', '/agent/environments', admin, {
      name: 'claimed',
      network: 'allowlist',
      allow_presets: ['npm', 'github'],
      allow_domains: ['api.example.com'],
      allow_internal_ranges: ['10.1.0.0/16'],
    });
    const envId = env.json<{ uid: string }>().uid;
    const created = await call('POST', '/agent/runs', admin, { prompt: 'echo', config: { harness: { type: 'command' }, environment_id: envId } });
    const runId = created.json<{ run_id: string }>().run_id;
    const worker = new ProtocolClient(server.url, server.workerSecret);
    const { runs } = await worker.claim({ worker_id: 'w', max_runs: 5, wait_ms: 0 });
    const claimed = runs.find((r) => r.run_id === runId);
    expect(claimed?.network?.policy).toBe('allowlist');
    expect(claimed?.network?.allow).toEqual(expect.arrayContaining(['npm.mirror.example.com', 'github.com', '*.github.com', 'api.example.com']));
    expect(claimed?.network?.allow).not.toContain('registry.npmjs.org');
    expect(claimed?.network?.internal_ranges).toEqual(['10.1.0.0/16']);
    expect(claimed?.network?.unknown_presets).toEqual([]);

    const lease = claimed?.lease_token as string;
    await worker.start(runId, lease);
    const audit = {
      policy: 'allowlist' as const,
      hosts: [
        { host: 'api.example.com', port: 443, connections: 2, denied: 0, bytes_sent: 100, bytes_received: 2000 },
        { host: 'pypi.org', port: 443, connections: 0, denied: 1, bytes_sent: 0, bytes_received: 0, denied_reason: 'not in the allowlist' },
      ],
      other: { connections: 0, denied: 0, bytes_sent: 0, bytes_received: 0 },
    };
    await worker.finish(runId, { lease_token: lease, state: 'SUCCEEDED', network_audit: audit });
    const got = await call('GET', `/agent/runs/${runId}/network`, member);
    expect(got.statusCode, got.body).toBe(200);
    expect(got.json()).toEqual({ run_id: runId, ...audit });
    expect((await call('GET', `/agent/runs/${runId}/network`, stranger)).statusCode).toBe(404);

    // A worker's audit past the bound is dropped; the finish itself is kept.
    const many = Array.from({ length: 201 }, (_, i) => ({ host: `h${i}.example.com`, port: 443, connections: 1, denied: 0, bytes_sent: 1, bytes_received: 1 }));
    const other = await call('POST', '/agent/runs', admin, { prompt: 'echo', config: { harness: { type: 'command' } } });
    const otherId = other.json<{ run_id: string }>().run_id;
    const second = (await worker.claim({ worker_id: 'w', max_runs: 5, wait_ms: 0 })).runs.find((r) => r.run_id === otherId);
    expect(second?.network).toEqual({ policy: 'allowlist', allow: ['npm.mirror.example.com'], internal_ranges: [], unknown_presets: [] });
    await worker.start(otherId, second?.lease_token as string);
    await worker.finish(otherId, { lease_token: second?.lease_token as string, state: 'SUCCEEDED', network_audit: { ...audit, hosts: many } });
    expect((await call('GET', `/agent/runs/${otherId}`, admin)).json<{ state: string }>().state).toBe('SUCCEEDED');
    const nothing = await call('GET', `/agent/runs/${otherId}/network`, admin);
    expect(nothing.json()).toMatchObject({ policy: null, hosts: [] });
  });
});
