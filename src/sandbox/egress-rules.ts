import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { NetworkReport } from './sandbox-backend.js';
import { networkInterfaces } from 'node:os';
import { MAPPED, NAT64, SIX_TO_FOUR, V4_SPECIAL, V6_SPECIAL, formatAddress, parseAddress, refusalReason } from '../core/ip-address.js';
import { parseInternalRange } from '../core/network-policy.js';
import { onPath } from './host-command.js';

/**
 * Network `on` (docs/network.md): any protocol out, but never to an internal
 * address (loopback of the host, private, link-local with the metadata
 * endpoint, CGNAT, multicast, reserved). An nftables table in the sandbox's
 * own network namespace, loaded by the worker (root) before the sandbox runs
 * anything: the sandbox's processes have no capability over a namespace its
 * user namespace does not own, so they cannot change it. Packets to those
 * ranges are refused in the output hook, before they leave the namespace
 * (TCP: "no route to host" at once; UDP: the send fails), and each refused
 * destination is remembered in a set the worker reads for the run's
 * conversation and audit. The sandbox's own addresses, its resolver (the
 * backend's, often on a private address; port 53 only) and the ranges an
 * operator allowed stay reachable.
 */
export const EGRESS_TABLE = 'oz_egress';

/** Every refused range, IPv4 and IPv6; IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are refused whole. */
export function refusedRanges(): { v4: string[]; v6: string[] } {
  const v6extra = [MAPPED, NAT64, SIX_TO_FOUR].map(([prefix, bits]) => `${formatAddress(prefix)}/${bits}`);
  return { v4: V4_SPECIAL.map(([cidr]) => cidr), v6: [...V6_SPECIAL.map(([cidr]) => cidr), ...v6extra] };
}

export interface EgressRulesInput {
  /** Internal ranges the operator allowed for the environment (`allow_internal_ranges`). */
  allowRanges: readonly string[];
  /** The sandbox's resolvers (port 53 only). */
  dnsServers: readonly string[];
  /** Addresses refused besides the internal ranges: the worker host's own public ones (default: read from its interfaces). */
  hostAddresses?: readonly string[];
}

/**
 * The worker host's own addresses that are not internal (a public one on a
 * cloud VM): slirp4netns and the engine's bridge carry a run's packets from
 * the host, so its services listening on every address would answer there.
 */
export function hostPublicAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .map((address) => address.address.replace(/%.*$/, ''))
    .filter((address) => refusalReason(address) === null);
}

/** The nftables script of a sandbox with network `on`. */
export function egressRuleset(input: EgressRulesInput): string {
  const refused = refusedRanges();
  const allowed = input.allowRanges.map(parseInternalRange);
  const isV6 = (cidr: string): boolean => cidr.includes(':');
  for (const address of input.hostAddresses ?? hostPublicAddresses()) {
    if (isV6(address)) refused.v6.push(`${address}/128`);
    else refused.v4.push(`${address}/32`);
  }
  const set = (name: string, type: string, elements: string[]): string =>
    `  set ${name} { type ${type}; flags interval; auto-merge;${elements.length > 0 ? ` elements = { ${elements.join(', ')} };` : ''} }`;
  const dns = input.dnsServers.filter((address) => parseAddress(address) !== null);
  const dnsRules = dns.map((address) => `    ${isV6(address) ? 'ip6' : 'ip'} daddr ${address} meta l4proto { tcp, udp } th dport 53 accept`);
  return [
    `table inet ${EGRESS_TABLE} {`,
    set('refused4', 'ipv4_addr', refused.v4),
    set('refused6', 'ipv6_addr', refused.v6),
    set(
      'allowed4',
      'ipv4_addr',
      allowed.filter((c) => !isV6(c)),
    ),
    set('allowed6', 'ipv6_addr', allowed.filter(isV6)),
    '  set denied4 { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 24h; size 256; }',
    '  set denied6 { type ipv6_addr . inet_service; flags dynamic, timeout; timeout 24h; size 256; }',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    // Its own addresses (loopback, and its interface's own, which route over lo); not "any packet on lo".
    '    fib daddr type local accept',
    ...dnsRules,
    '    ip daddr @allowed4 accept',
    '    ip6 daddr @allowed6 accept',
    '    ip daddr @refused4 meta l4proto { tcp, udp } add @denied4 { ip daddr . th dport }',
    '    ip6 daddr @refused6 meta l4proto { tcp, udp } add @denied6 { ip6 daddr . th dport }',
    '    ip daddr @refused4 reject with icmpx type admin-prohibited',
    '    ip6 daddr @refused6 reject with icmpx type admin-prohibited',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NftTools {
  nft: string;
  nsenter: string;
}

/** nft and nsenter on `path`, or null when either is missing. */
export function nftTools(path: string): NftTools | null {
  const nft = onPath('nft', path);
  const nsenter = onPath('nsenter', path);
  return nft && nsenter ? { nft, nsenter } : null;
}

/** Run nft in the network namespace of `pid`, with `script` on stdin (or `args`); resolves to its stdout. */
function nftIn(tools: NftTools, pid: number, args: string[], script?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tools.nsenter, [`--net=/proc/${pid}/ns/net`, '--', tools.nft, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-2000)));
    child.once('error', (error) => reject(new Error(`nft could not start: ${error.message} (install nftables for network "on")`)));
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`nft exited with code ${code}: ${err.trim()}`))));
    child.stdin.end(script ?? '');
  });
}

/** Load the `on` rules into the sandbox's network namespace (that of `pid`), before it can send anything. */
export async function applyEgressRules(tools: NftTools, pid: number, input: EgressRulesInput): Promise<void> {
  await nftIn(tools, pid, ['-f', '-'], egressRuleset(input));
}

/** The destinations the rules refused so far (`address`, `port`), at most 512. */
export async function refusedDestinations(tools: NftTools, pid: number): Promise<{ address: string; port: number }[]> {
  const out: { address: string; port: number }[] = [];
  for (const name of ['denied4', 'denied6']) {
    const text = await nftIn(tools, pid, ['-j', 'list', 'set', 'inet', EGRESS_TABLE, name]);
    const parsed = JSON.parse(text) as { nftables?: { set?: { elem?: { elem?: { val?: { concat?: [string, number] } } }[] } }[] };
    for (const item of parsed.nftables ?? []) {
      for (const element of item.set?.elem ?? []) {
        const pair = element.elem?.val?.concat;
        if (pair && typeof pair[0] === 'string' && typeof pair[1] === 'number') out.push({ address: pair[0], port: pair[1] });
      }
    }
  }
  return out;
}

/** The bytes the sandbox's interfaces (but loopback) sent and received, from its namespace's /proc/net/dev. */
export function interfaceBytes(devText: string): { sent: number; received: number } {
  let sent = 0;
  let received = 0;
  for (const line of devText.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!name || rest === undefined || name.trim() === 'lo') continue;
    const fields = rest.trim().split(/\s+/).map(Number);
    received += fields[0] ?? 0;
    sent += fields[8] ?? 0;
  }
  return { sent, received };
}

/** The report of the namespace of `pid` now: the refused destinations and its interfaces' bytes. */
export async function readNetworkReport(tools: NftTools, pid: number): Promise<NetworkReport> {
  const refused = await refusedDestinations(tools, pid);
  const bytes = interfaceBytes(readFileSync(`/proc/${pid}/net/dev`, 'utf8'));
  return { refused, ...bytes };
}

/** Two launches' reports as one (a sandbox that restarted). */
export function addReports(earlier: NetworkReport | null, later: NetworkReport | null): NetworkReport | null {
  if (!earlier || !later) return later ?? earlier;
  const seen = new Set(earlier.refused.map((r) => `${r.address}:${r.port}`));
  return {
    refused: [...earlier.refused, ...later.refused.filter((r) => !seen.has(`${r.address}:${r.port}`))].slice(0, 512),
    sent: earlier.sent + later.sent,
    received: earlier.received + later.received,
  };
}
