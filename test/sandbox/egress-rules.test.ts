import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { V4_SPECIAL, V6_SPECIAL } from '../../src/core/ip-address.js';
import {
  addReports,
  applyEgressRules,
  egressRuleset,
  EGRESS_TABLE,
  interfaceBytes,
  nftTools,
  readNetworkReport,
  refusedDestinations,
  refusedRanges,
} from '../../src/sandbox/egress-rules.js';
import type { NetworkReport } from '../../src/sandbox/sandbox-backend.js';
import { until } from '../support/until.js';

/**
 * Network `on`'s nftables rules: the script's text, the parsing of what the
 * worker reads back, and (as root, with nft and ip) the script loaded into a
 * network namespace this test makes, joined by a veth pair to a second one
 * it also makes, with a listener there: the only destination anything here
 * sends to.
 */

/** The elements of set `name` in `script` (none: []). */
function setElements(script: string, name: string): string[] {
  const line = script.split('\n').find((l) => l.startsWith(`  set ${name} {`));
  if (!line) throw new Error(`no set ${name}`);
  const match = /elements = \{ (.*) \};/.exec(line);
  return match ? (match[1] as string).split(', ') : [];
}

/** The index of the first line of `script` that contains `text`, failing when none does. */
function lineOf(script: string, text: string): number {
  const index = script.split('\n').findIndex((l) => l.includes(text));
  if (index < 0) throw new Error(`no line with ${text}`);
  return index;
}

describe('egressRuleset', () => {
  it('is one inet table refusing every internal IPv4 range', () => {
    const script = egressRuleset({ allowRanges: [], dnsServers: [] });
    expect(script.startsWith(`table inet ${EGRESS_TABLE} {\n`)).toBe(true);
    expect(EGRESS_TABLE).toBe('oz_egress');
    const refused4 = setElements(script, 'refused4');
    // The internal ranges first (anything after them is refused too).
    expect(refused4.slice(0, V4_SPECIAL.length)).toEqual(V4_SPECIAL.map(([cidr]) => cidr));
    for (const cidr of ['169.254.0.0/16', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '224.0.0.0/4', '240.0.0.0/4']) {
      expect(refused4, cidr).toContain(cidr);
    }
    expect(script).toContain('type filter hook output priority 0; policy accept;');
    expect(script).toContain('ip daddr @refused4 reject with icmpx type admin-prohibited');
    expect(script).toContain('ip6 daddr @refused6 reject with icmpx type admin-prohibited');
  });

  it('refuses every internal IPv6 range, and the forms that carry an IPv4 address whole', () => {
    const script = egressRuleset({ allowRanges: [], dnsServers: [] });
    const refused6 = setElements(script, 'refused6');
    const expected6 = [...V6_SPECIAL.map(([cidr]) => cidr), '::ffff:0:0/96', '64:ff9b::/96', '2002::/16'];
    expect(refused6.slice(0, expected6.length)).toEqual(expected6);
    expect(refusedRanges()).toEqual({ v4: V4_SPECIAL.map(([cidr]) => cidr), v6: expected6 });
  });

  it('puts the allowed ranges, canonical, into allowed4 and allowed6', () => {
    const script = egressRuleset({ allowRanges: ['10.20.30.40/16', 'fd00:1::5/48', '192.168.7.7'], dnsServers: [] });
    expect(setElements(script, 'allowed4')).toEqual(['10.20.0.0/16', '192.168.7.7/32']);
    expect(setElements(script, 'allowed6')).toEqual(['fd00:1::/48']);
  });

  it('writes empty sets without elements', () => {
    const script = egressRuleset({ allowRanges: [], dnsServers: [] });
    expect(setElements(script, 'allowed4')).toEqual([]);
    expect(setElements(script, 'allowed6')).toEqual([]);
    expect(script).toContain('  set allowed4 { type ipv4_addr; flags interval; auto-merge; }');
    expect(script).toContain('  set allowed6 { type ipv6_addr; flags interval; auto-merge; }');
  });

  it('throws on a range that is not one', () => {
    expect(() => egressRuleset({ allowRanges: ['0.0.0.0/0'], dnsServers: [] })).toThrow(/not an internal range/);
    expect(() => egressRuleset({ allowRanges: ['nope'], dnsServers: [] })).toThrow(/is not an address range/);
  });

  it('lets the resolvers through on port 53 only, skipping what is not an address', () => {
    const script = egressRuleset({ allowRanges: [], dnsServers: ['10.0.0.53', 'fd00::53', 'resolver.example', '10.0.0.1; flush ruleset'] });
    expect(script).toContain('    ip daddr 10.0.0.53 meta l4proto { tcp, udp } th dport 53 accept\n');
    expect(script).toContain('    ip6 daddr fd00::53 meta l4proto { tcp, udp } th dport 53 accept\n');
    expect(script).not.toContain('resolver.example');
    expect(script).not.toContain('flush');
    expect(script.split('\n').filter((l) => l.includes('dport 53'))).toHaveLength(2);
  });

  it('accepts resolvers and allowed ranges before it records and rejects the refused ones', () => {
    const script = egressRuleset({ allowRanges: ['10.20.0.0/16', 'fd00:1::/48'], dnsServers: ['10.0.0.53', 'fd00::53'] });
    const firstRefusal = Math.min(lineOf(script, 'add @denied4'), lineOf(script, 'add @denied6'), lineOf(script, 'reject'));
    for (const accept of ['ip daddr 10.0.0.53', 'ip6 daddr fd00::53', 'ip daddr @allowed4 accept', 'ip6 daddr @allowed6 accept']) {
      expect(lineOf(script, accept), accept).toBeLessThan(firstRefusal);
    }
    // A refused destination is remembered before it is rejected.
    expect(lineOf(script, 'ip daddr @refused4 meta l4proto { tcp, udp } add @denied4')).toBeLessThan(lineOf(script, 'ip daddr @refused4 reject'));
    expect(lineOf(script, 'ip6 daddr @refused6 meta l4proto { tcp, udp } add @denied6')).toBeLessThan(lineOf(script, 'ip6 daddr @refused6 reject'));
    expect(script).toContain('set denied4 { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 24h; size 256; }');
    expect(script.endsWith('}\n')).toBe(true);
  });
});

describe('interfaceBytes', () => {
  const DEV = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo: 9999999     100    0    0    0     0          0         0  8888888     100    0    0    0     0       0          0',
    '  eth0:    1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0',
    'veth1a:300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0',
    '',
  ].join('\n');

  it('sums received and sent bytes of every interface but loopback', () => {
    expect(interfaceBytes(DEV)).toEqual({ sent: 2400, received: 1300 });
  });

  it('is zero with loopback only, or nothing', () => {
    expect(interfaceBytes(DEV.split('\n').slice(0, 3).join('\n'))).toEqual({ sent: 0, received: 0 });
    expect(interfaceBytes('')).toEqual({ sent: 0, received: 0 });
  });

  it('skips the two header lines even when they hold numbers', () => {
    expect(interfaceBytes('eth9: 5 0 0 0 0 0 0 0 5\neth9: 5 0 0 0 0 0 0 0 5\n  eth0: 7 0 0 0 0 0 0 0 11\n')).toEqual({ sent: 11, received: 7 });
  });
});

describe('addReports', () => {
  const report = (refused: [string, number][], sent: number, received: number): NetworkReport => ({
    refused: refused.map(([address, port]) => ({ address, port })),
    sent,
    received,
  });

  it('with one missing, is the other', () => {
    const one = report([['10.0.0.1', 80]], 1, 2);
    expect(addReports(null, null)).toBeNull();
    expect(addReports(null, one)).toBe(one);
    expect(addReports(one, null)).toBe(one);
  });

  it('adds the bytes and joins the refused destinations without repeats', () => {
    const earlier = report(
      [
        ['10.0.0.1', 80],
        ['169.254.169.254', 80],
      ],
      100,
      200,
    );
    const later = report(
      [
        ['10.0.0.1', 80],
        ['10.0.0.1', 443],
        ['fd00::1', 22],
      ],
      1,
      2,
    );
    expect(addReports(earlier, later)).toEqual(
      report(
        [
          ['10.0.0.1', 80],
          ['169.254.169.254', 80],
          ['10.0.0.1', 443],
          ['fd00::1', 22],
        ],
        101,
        202,
      ),
    );
  });

  it('keeps at most 512 refused destinations, the earlier first', () => {
    const earlier = report(
      Array.from({ length: 500 }, (_, i) => [`10.0.${i >> 8}.${i & 0xff}`, 80] as [string, number]),
      0,
      0,
    );
    const later = report(
      Array.from({ length: 20 }, (_, i) => [`10.1.0.${i}`, 80] as [string, number]),
      0,
      0,
    );
    const sum = addReports(earlier, later) as NetworkReport;
    expect(sum.refused).toHaveLength(512);
    expect(sum.refused[0]).toEqual({ address: '10.0.0.0', port: 80 });
    expect(sum.refused[511]).toEqual({ address: '10.1.0.11', port: 80 });
  });
});

/** Why the namespace tests cannot run here, or null. */
function namespacesMissing(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const [tool, args] of [
    ['ip', ['-V']],
    ['nft', ['--version']],
    ['nsenter', ['--version']],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return null;
}

const missing = namespacesMissing();
if (missing) console.log(`the egress rules' namespace tests are skipped: ${missing}`);

/** Connect to host:port; prints "connected", the error's code, or "timeout" (after waitMs, default 5 s). */
const PROBE = `
const [host, port, waitMs] = process.argv.slice(1);
const socket = require('node:net').connect(Number(port), host);
const timer = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(waitMs || 5000));
socket.on('connect', () => { clearTimeout(timer); console.log('connected'); socket.destroy(); });
socket.on('error', (error) => { clearTimeout(timer); console.log(error.code); });
`;

/** Listen on address (any port) and connect to it from the same namespace; prints "connected" or the error's code. */
const SELF_PROBE = `
const net = require('node:net');
const [host] = process.argv.slice(1);
const server = net.createServer((s) => s.destroy());
const timer = setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);
server.listen(0, host, () => {
  const socket = net.connect(server.address().port, host);
  socket.on('connect', () => { clearTimeout(timer); console.log('connected'); socket.destroy(); server.close(); });
  socket.on('error', (error) => { clearTimeout(timer); console.log(error.code); server.close(); });
});
`;

/** Listen on address:80 and :53; prints "ready", then "connection PORT" for each connection. */
const LISTEN = `
const net = require('node:net');
const [host] = process.argv.slice(1);
let ready = 0;
for (const port of [80, 53]) {
  net.createServer((s) => { console.log('connection ' + port); s.destroy(); }).listen(port, host, () => { if (++ready === 2) console.log('ready'); });
}
`;

describe.skipIf(missing !== null)('the egress rules in a network namespace', () => {
  const SANDBOX = '10.213.250.1';
  const PEER = '10.213.250.2';
  let sandbox: string;
  let peer: string;
  const children: ChildProcess[] = [];
  let listenerOutput = '';

  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const inSandbox = (args: string[], input?: string): string =>
    execFileSync('ip', ['netns', 'exec', sandbox, ...args], { encoding: 'utf8', input, timeout: 20_000, stdio: ['pipe', 'pipe', 'pipe'] });
  const probe = (host: string, port: number, waitMs = 5000): string => inSandbox([process.execPath, '-e', PROBE, host, String(port), String(waitMs)]).trim();
  /** The (address, port) pairs in the denied4 set. */
  const denied4 = (): [string, number][] => {
    const listed = JSON.parse(inSandbox(['nft', '-j', 'list', 'set', 'inet', EGRESS_TABLE, 'denied4'])) as {
      nftables: { set?: { elem?: { elem: { val: { concat: [string, number] } } }[] } }[];
    };
    return listed.nftables.flatMap((item) => item.set?.elem ?? []).map((e) => e.elem.val.concat);
  };
  const selfProbe = (host: string): string => inSandbox([process.execPath, '-e', SELF_PROBE, host]).trim();
  const load = (allowRanges: string[], dnsServers: string[]): void => {
    inSandbox(['nft', '-f', '-'], egressRuleset({ allowRanges, dnsServers }));
  };

  /** A process in `ns` (`ip netns exec` execs it: its PID is the command's). */
  const startIn = (ns: string, command: string[]): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return child;
  };

  beforeEach(async () => {
    const id = randomBytes(3).toString('hex');
    sandbox = `oz-rt-${id}`;
    peer = `oz-rp-${id}`;
    ip('netns', 'add', sandbox);
    ip('netns', 'add', peer);
    // Both ends are made inside the namespaces: nothing is added to the host's.
    ip('link', 'add', `ozrt${id}`, 'netns', sandbox, 'type', 'veth', 'peer', 'name', `ozrp${id}`, 'netns', peer);
    ip('-n', sandbox, 'addr', 'add', `${SANDBOX}/30`, 'dev', `ozrt${id}`);
    ip('-n', peer, 'addr', 'add', `${PEER}/30`, 'dev', `ozrp${id}`);
    for (const [ns, dev] of [
      [sandbox, `ozrt${id}`],
      [peer, `ozrp${id}`],
    ]) {
      ip('-n', ns as string, 'link', 'set', dev as string, 'up');
      ip('-n', ns as string, 'link', 'set', 'lo', 'up');
    }
    // Everything else through the peer, so what stops a packet is the rules, not a missing route.
    ip('-n', sandbox, 'route', 'add', 'default', 'via', PEER);
    listenerOutput = '';
    const listener = startIn(peer, [process.execPath, '-e', LISTEN, PEER]);
    listener.stdout?.on('data', (chunk: Buffer) => (listenerOutput += chunk.toString()));
    await until('the peer listens', () => listenerOutput.includes('ready'), 15_000);
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        process.kill(child.pid, 'SIGKILL');
        await exited;
      }
    }
    for (const ns of [sandbox, peer]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Not made.
      }
    }
  });

  it('without the rules, the peer is reachable (the topology works)', () => {
    expect(probe(PEER, 80)).toBe('connected');
  });

  it('loads, and nft lists the table', () => {
    load([], []);
    const listed = inSandbox(['nft', 'list', 'table', 'inet', EGRESS_TABLE]);
    expect(listed).toContain(`table inet ${EGRESS_TABLE}`);
    expect(listed).toContain('set refused4');
    expect(listed).toContain('chain output');
    expect(listed).toContain('10.0.0.0/8');
  });

  it('rejects TCP to an internal address at once, before it leaves the namespace, and remembers it; the resolver stays reachable on port 53', async () => {
    load([], [PEER]);
    expect(probe(PEER, 80)).toBe('EHOSTUNREACH');
    expect(probe('10.9.9.9', 80)).toBe('EHOSTUNREACH');
    expect(probe('169.254.169.254', 80)).toBe('EHOSTUNREACH');
    // The same peer, on the resolver's port: the path is there.
    expect(probe(PEER, 53)).toBe('connected');
    await until('the peer saw the connection to port 53', () => listenerOutput.includes('connection 53'), 10_000);
    expect(listenerOutput).not.toContain('connection 80');
    const pairs = denied4();
    expect(pairs).toEqual(
      expect.arrayContaining([
        [PEER, 80],
        ['10.9.9.9', 80],
        ['169.254.169.254', 80],
      ]),
    );
    expect(pairs).not.toContainEqual([PEER, 53]);
  });

  it('lets an allowed range through, and still rejects the rest of 10.0.0.0/8', async () => {
    load([`${PEER}/32`], []);
    expect(probe(PEER, 80)).toBe('connected');
    await until('the peer saw the connection', () => listenerOutput.includes('connection 80'), 10_000);
    expect(probe('10.213.251.2', 80)).toBe('EHOSTUNREACH');
    expect(probe('10.9.9.9', 80)).toBe('EHOSTUNREACH');
  });

  it("keeps the namespace's own addresses reachable, but not another address routed over loopback", () => {
    load([], []);
    expect(selfProbe('127.0.0.1')).toBe('connected');
    expect(selfProbe(SANDBOX)).toBe('connected');
    expect(denied4()).toEqual([]);
    // Routed over lo, yet not the namespace's own: refused and remembered (the kernel's ICMP answer does not reach the socket here, so it waits).
    inSandbox(['ip', 'route', 'add', '10.77.0.0/24', 'dev', 'lo']);
    expect(probe('10.77.0.5', 80, 1500)).not.toBe('connected');
    expect(denied4()).toEqual([['10.77.0.5', 80]]);
  });

  it('applyEgressRules, refusedDestinations and readNetworkReport work through a process in the namespace', async () => {
    const tools = nftTools(process.env.PATH ?? '');
    expect(tools).not.toBeNull();
    const holder = startIn(sandbox, ['sleep', '300']);
    const pid = holder.pid as number;
    // The holder is in the namespace once `ip netns exec` has exec'd sleep.
    await until('the holder is in the namespace', () => {
      try {
        return execFileSync('readlink', [`/proc/${pid}/exe`], { encoding: 'utf8' })
          .trim()
          .endsWith('sleep');
      } catch {
        return false;
      }
    });
    await applyEgressRules(tools!, pid, { allowRanges: [], dnsServers: [PEER] });
    expect(await refusedDestinations(tools!, pid)).toEqual([]);
    expect(probe(PEER, 80)).toBe('EHOSTUNREACH');
    expect(probe(PEER, 53)).toBe('connected');
    const report = await readNetworkReport(tools!, pid);
    expect(report.refused).toEqual([{ address: PEER, port: 80 }]);
    expect(report.sent).toBeGreaterThan(0);
    expect(report.received).toBeGreaterThan(0);
  });
});
