import { execFileSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { engineReachable } from '../support/container-engine.js';
import { podmanMissing, startPodmanService, type PodmanService } from '../support/podman-service.js';
import { runEvents } from '../support/run-events.js';
import { netnsMissing, startTestHost, type TestHost } from '../support/netns-host.js';
import { refusalReason } from '../../src/core/ip-address.js';

/**
 * Network egress (docs/network.md) on every isolating backend, from the
 * outside: `allowlist` reaches what its rules name through the worker's proxy
 * and nothing else (a process that ignores the proxy variables has no route
 * at all); `on` reaches out but never an internal address. The only real
 * destinations: the package registry these machines reach (its host read
 * from npm's configuration now), and a test host in a network namespace this
 * test makes. Every refusal is decided before a packet leaves the sandbox.
 */
type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

function npmConfig(key: string): string | null {
  try {
    const value = execFileSync('npm', ['config', 'get', key], { encoding: 'utf8' }).trim();
    return value && value !== 'null' && value !== 'undefined' ? value : null;
  } catch {
    return null;
  }
}

const registry = npmConfig('registry');
const registryHost = registry ? new URL(registry).host : null;
const cafile = npmConfig('cafile');
const missing = netnsMissing();
const SUITES = [...(missing ? [] : ['bwrap']), ...(!missing && engineReachable() ? ['docker'] : []), ...(!missing && podmanMissing() === null ? ['docker on podman'] : [])];
if (missing) console.log(`the egress suite is skipped: ${missing}`);

describe.each(SUITES)('network egress on the %s backend', (suite) => {
  const backend = suite === 'docker on podman' ? 'docker' : suite;
  let podman: PodmanService | null = null;
  let server: OzServerHandle;
  let dir: string;
  let testHost: TestHost;
  let loopback: Server;
  let loopbackPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-egress-'));
    chmodSync(dir, 0o755);
    // The operator's presets: npm's is this deployment's registry (as an operator with a mirror would set it).
    const presets = join(dir, 'presets.json');
    writeFileSync(presets, JSON.stringify({ npm: registryHost ? [registryHost] : [] }));
    testHost = await startTestHost();
    loopback = createServer((socket) => socket.end('hello from the host loopback\n'));
    await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', () => resolve()));
    loopbackPort = (loopback.address() as { port: number }).port;
    if (suite === 'docker on podman') podman = await startPodmanService();
    server = await startOzServer('sqlite', {
      args: ['--backend', backend],
      env: {
        ...(podman ? { DOCKER_HOST: podman.dockerHost } : {}),
        OZ_NETWORK_PRESETS_FILE: presets,
        OZ_TEAM_MAX_CONCURRENT_RUNS: '10',
        OZ_WORKER_CONCURRENCY: '3',
        OZ_KILL_GRACE_MS: '500',
      },
    });
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      loopback?.close();
      await podman?.stop();
      await testHost?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const createEnvironment = async (body: Json): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: `net-${Math.random().toString(36).slice(2, 8)}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const run = async (prompt: string, environmentId: string) => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt, config: { harness: { type: 'command' }, environment_id: environmentId } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const result = await until(`run ${id} to end`, async () => {
      const got = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(got.state)) ? got : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    const notices = events.filter((e) => e.type === 'notice').map((e) => String(e.data.message));
    const network = (await api(server, 'GET', `/api/v1/agent/runs/${id}/network`, { key: server.adminKey })).body as {
      policy: string | null;
      hosts: { host: string; port: number; connections: number; denied: number; bytes_received: number; denied_reason?: string }[];
      other: { bytes_sent: number; bytes_received: number };
    };
    return { id, result, output, notices, network };
  };
  const tcp = (address: string, port: number, label: string): string => `timeout 3 bash -c 'cat < /dev/tcp/${address}/${port}' 2>/dev/null || echo ${label}=closed`;

  describe('allowlist', () => {
    it.runIf(registryHost !== null)(
      "installs a package from the npm preset's registry through the proxy, and refuses a domain off the list at once, telling the conversation",
      async () => {
        // Where these machines' registry sits on an address the proxy refuses (a documentation or private
        // range), the operator allows that address, as one on such a network would.
        const addresses = (await lookup((registryHost as string).split(':')[0] as string, { all: true })).map((a) => a.address);
        const internal = addresses.filter((address) => refusalReason(address) !== null).map((address) => `${address}/${address.includes(':') ? 128 : 32}`);
        const envId = await createEnvironment({
          network: 'allowlist',
          allow_presets: ['npm'],
          ...(internal.length > 0 ? { allow_internal_ranges: internal } : {}),
          env: { ...(cafile ? { NPM_CONFIG_CAFILE: cafile } : {}), NPM_CONFIG_REGISTRY: registry as string, NPM_CONFIG_UPDATE_NOTIFIER: 'false' },
        });
        const { result, output, notices, network } = await run(
          [
            'set -e',
            'mkdir proj && cd proj && echo "{}" > package.json',
            'npm install --no-audit --no-fund --loglevel=error is-number@7.0.0 >/dev/null',
            "node -e \"console.log('is-number says', require('is-number')(7))\"",
            'curl -sS -o /dev/null https://not-allowed.example.org/ 2>&1 | tail -1 || true',
            // A tunnel opened for the registry cannot carry TLS for another name (fronting on a shared host).
            `echo | openssl s_client -proxy 127.0.0.1:3128 -connect ${registryHost as string}${(registryHost as string).includes(':') ? '' : ':443'} -servername attacker.example.org >/dev/null 2>&1 && echo fronted=yes || echo fronted=no`,
          ].join('\n'),
          envId,
        );
        expect(result.state, output).toBe('SUCCEEDED');
        expect(output).toContain('is-number says true');
        expect(output).toMatch(/CONNECT tunnel failed, response 403/);
        expect(notices).toContain('network denied: not-allowed.example.org:443 (not in the allowlist)');
        expect(output).toContain('fronted=no');
        expect(notices.some((n) => n.includes("(the tunnel's TLS asks for attacker.example.org, not"))).toBe(true);
        // The audit: the registry with bytes received, the refused domain counted.
        const [regName, regPort = '443'] = (registryHost as string).split(':');
        const reg = network.hosts.find((h) => h.host === regName && h.port === Number(regPort));
        expect(network.policy).toBe('allowlist');
        expect(reg?.connections, JSON.stringify(network)).toBeGreaterThan(0);
        expect(reg?.bytes_received).toBeGreaterThan(1000);
        expect(network.hosts.find((h) => h.host === 'not-allowed.example.org')?.denied).toBe(1);
      },
    );

    it('refuses names resolving to loopback and internal addresses named directly, and a process ignoring the proxy reaches nothing', async () => {
      // "localhost" resolves (on the worker's host) to 127.0.0.1: allowed by name, refused by address.
      const envId = await createEnvironment({ network: 'allowlist', allow_domains: [`localhost:${loopbackPort}`, `*.example.net`] });
      const { result, output, notices } = await run(
        [
          // --noproxy '': through the proxy even for localhost (NO_PROXY keeps the sandbox's own loopback its own).
          `curl -sS --max-time 5 --noproxy '' http://localhost:${loopbackPort}/ ; echo`,
          'curl -sS --max-time 5 http://169.254.169.254/latest/meta-data/ ; echo',
          `curl -sS --max-time 5 -o /dev/null https://${testHost.address}:${testHost.tcpPort}/ 2>&1 | tail -1`,
          // Ignoring the proxy: no route, no resolver.
          tcp(testHost.address, testHost.tcpPort, 'testhost'),
          tcp('127.0.0.1', loopbackPort, 'loopback'),
          `env -u HTTPS_PROXY -u https_proxy curl -sS --max-time 5 https://www.example.net/ >/dev/null 2>&1 || echo direct=failed`,
          'echo "links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
        ].join('\n'),
        envId,
      );
      expect(result.state).toBe('SUCCEEDED');
      expect(output).toContain(`network denied: localhost:${loopbackPort} (resolves to 127.0.0.1, loopback)`);
      expect(output).toContain('network denied: 169.254.169.254:80 (an address; the allowlist names domains)');
      expect(output).toMatch(/CONNECT tunnel failed, response 403/);
      expect(output).toContain('testhost=closed');
      expect(output).toContain('loopback=closed');
      expect(output).toContain('direct=failed');
      expect(output).toContain('links=lo \n');
      expect(output).not.toContain('hello from');
      expect(notices).toContain(`network denied: localhost:${loopbackPort} (resolves to 127.0.0.1, loopback)`);
      expect(notices).toContain(`network denied: ${testHost.address}:${testHost.tcpPort} (an address; the allowlist names domains)`);
    });

    it('reaches an internal range only when an admin allowed it, and then through the proxy only', async () => {
      const envId = await createEnvironment({ network: 'allowlist', allow_internal_ranges: [`${testHost.address}/32`] });
      const { result, output, network } = await run(
        [
          `curl -sS --max-time 5 http://${testHost.address}:${testHost.tcpPort}/ || true`,
          tcp(testHost.address, testHost.tcpPort, 'direct'),
          // What a shared host routes by must be what was checked.
          `curl -sS --max-time 5 -H 'Host: evil.example' http://${testHost.address}:${testHost.tcpPort}/`,
        ].join('\n'),
        envId,
      );
      expect(result.state).toBe('SUCCEEDED');
      // The test host answers raw text: curl sees it as an HTTP/0.9 reply, or an error; either way the proxy connected.
      expect(network.hosts.find((h) => h.host === testHost.address)?.connections, JSON.stringify(network)).toBe(1);
      expect(output).toContain('direct=closed');
      expect(output).toContain(`the Host header (evil.example) is not the URL's host (${testHost.address}:${testHost.tcpPort})`);
    });
  });

  describe('on', () => {
    it('refuses internal addresses for TCP and UDP before they leave the sandbox, and tells the conversation', async () => {
      const envId = await createEnvironment({ network: 'on' });
      const udp = (address: string, port: number, label: string): string =>
        `python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\ntry:\n s.sendto(b'hi', ('${address}', ${port})); print('${label}=' + s.recv(100).decode())\nexcept Exception as e: print('${label}=refused', type(e).__name__)"`;
      const { result, output, notices, network } = await run(
        [
          tcp(testHost.address, testHost.tcpPort, 'testhost'),
          udp(testHost.address, testHost.udpPort, 'udp'),
          tcp('169.254.169.254', 80, 'metadata'),
          tcp('100.64.0.1', 80, 'cgnat'),
          tcp('240.0.0.1', 80, 'reserved'),
          udp('224.0.0.251', 5353, 'multicast'),
          tcp('127.0.0.1', loopbackPort, 'loopback'),
          // Its own loopback stays its own.
          `python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 8099)); s.listen(); c=socket.create_connection(('127.0.0.1', 8099)); print('own-loopback=ok')"`,
        ].join('\n'),
        envId,
      );
      expect(result.state).toBe('SUCCEEDED');
      for (const label of ['testhost', 'metadata', 'cgnat', 'reserved', 'loopback']) expect(output).toContain(`${label}=closed`);
      expect(output).toContain('udp=refused');
      expect(output).toContain('multicast=refused');
      expect(output).toContain('own-loopback=ok');
      expect(output).not.toContain('hello from');
      expect(output).not.toContain('udp=echo');
      expect(notices.some((n) => n.startsWith(`network denied: ${testHost.address}:${testHost.tcpPort} (`))).toBe(true);
      expect(notices.some((n) => n.startsWith(`network denied: ${testHost.address}:${testHost.udpPort} (`))).toBe(true);
      expect(notices.some((n) => n.startsWith('network denied: 169.254.169.254:80 ('))).toBe(true);
      expect(network.policy).toBe('on');
      expect(network.hosts.some((h) => h.host === '169.254.169.254' && h.denied > 0)).toBe(true);
    });

    it('reaches an internal range an admin allowed, over TCP and UDP', async () => {
      const envId = await createEnvironment({ network: 'on', allow_internal_ranges: [`${testHost.address}/32`] });
      const { result, output, network } = await run(
        [
          tcp(testHost.address, testHost.tcpPort, 'testhost'),
          `python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(b'hi', ('${testHost.address}', ${testHost.udpPort})); print('udp=' + s.recv(100).decode())"`,
          tcp('169.254.169.254', 80, 'metadata'),
        ].join('\n'),
        envId,
      );
      expect(result.state).toBe('SUCCEEDED');
      expect(output).toContain('hello from the test host');
      expect(output).toContain('udp=echo hi');
      expect(output).toContain('metadata=closed');
      expect(network.other.bytes_received).toBeGreaterThan(0);
    });
  });
});
