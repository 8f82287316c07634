import { isIP } from 'node:net';

/**
 * IP addresses as bytes, and the ranges no run or host-side tool may reach by
 * default: loopback, private, shared (CGNAT), link-local (a cloud's metadata
 * address), unique-local, multicast, unspecified, documentation and other
 * reserved ranges, in every spelling (IPv4-mapped, NAT64 and 6to4 forms are
 * judged by the IPv4 address they carry). Written here rather than taken from
 * a library because the judgement must match the kernel's reading of an
 * address exactly and carry its own reasons (docs/design.md "Network egress").
 */

/** An address as bytes: 4 (IPv4) or 16 (IPv6). */
export type Bytes = number[];

export function parseV4(text: string): Bytes | null {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return null;
  const bytes = text.split('.').map(Number);
  return bytes.every((b) => b <= 255) && text.split('.').every((part) => part === '0' || !part.startsWith('0')) ? bytes : null;
}

export function parseV6(text: string): Bytes | null {
  if (text.includes('%') || isIP(text) !== 6) return null;
  let hex = text;
  // A trailing dotted IPv4 part (::ffff:127.0.0.1) as its two groups.
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (dotted) {
    const v4 = parseV4(dotted[2] as string);
    if (!v4) return null;
    const [a, b, c, d] = v4 as [number, number, number, number];
    hex = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = hex.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string | undefined): number[] => (part ? part.split(':').map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? Number.parseInt(g, 16) : NaN)) : []);
  const left = groups(halves[0]);
  const right = groups(halves[1]);
  const fill = halves.length === 2 ? 8 - left.length - right.length : 0;
  if (fill < 0) return null;
  const all = [...left, ...Array<number>(fill).fill(0), ...right];
  if (all.length !== 8 || all.some((g) => Number.isNaN(g))) return null;
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The bytes of an IP address (v4: 4, v6: 16), or null if `text` is not one (zone ids are not addresses here). */
export function parseAddress(text: string): Bytes | null {
  return parseV4(text) ?? parseV6(text);
}

export function formatAddress(bytes: Bytes): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  // The longest run of zero groups becomes "::".
  let best = [-1, 0];
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > (best[1] as number) && j - i > 1) best = [i, j - i];
    i = j;
  }
  const [start, length] = best as [number, number];
  if (start < 0) return groups.join(':');
  return `${groups.slice(0, start).join(':')}::${groups.slice(start + length).join(':')}`;
}

export function inPrefix(bytes: Bytes, prefix: Bytes, bits: number): boolean {
  if (bytes.length !== prefix.length) return false;
  for (let bit = 0; bit < bits; bit++) {
    const mask = 0x80 >> (bit % 8);
    if (((bytes[bit >> 3] as number) & mask) !== ((prefix[bit >> 3] as number) & mask)) return false;
  }
  return true;
}

export function range(cidr: string): [Bytes, number] {
  const [address, bits] = cidr.split('/');
  return [parseAddress(address as string) as Bytes, Number(bits)];
}

export const V4_SPECIAL: [string, string][] = [
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared address space (CGNAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay anycast'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved (and broadcast)'],
];

export const V6_SPECIAL: [string, string][] = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'IPv4-compatible (deprecated)'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['100::/64', 'discard-only'],
  ['2001::/23', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['5f00::/16', 'segment routing (SRv6)'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (deprecated)'],
  ['ff00::/8', 'multicast'],
];

const V4_RANGES = V4_SPECIAL.map(([cidr, label]) => [...range(cidr), label] as const);
const V6_RANGES = V6_SPECIAL.map(([cidr, label]) => [...range(cidr), label] as const);
export const [MAPPED, NAT64, SIX_TO_FOUR, GLOBAL_UNICAST] = (['::ffff:0:0/96', '64:ff9b::/96', '2002::/16', '2000::/3'] as const).map(range) as [
  [Bytes, number],
  [Bytes, number],
  [Bytes, number],
  [Bytes, number],
];

/** The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), if any. */
function embeddedV4(bytes: Bytes): Bytes | null {
  if (bytes.length !== 16) return null;
  if (inPrefix(bytes, ...MAPPED) || inPrefix(bytes, ...NAT64)) return bytes.slice(12);
  if (inPrefix(bytes, ...SIX_TO_FOUR)) return bytes.slice(2, 6);
  return null;
}

/**
 * Why host-side git may not connect to `address` by default ("loopback",
 * "private", …), or null for a public unicast address. Anything that is not
 * an IP address is refused too.
 */
export function refusalReason(address: string): string | null {
  const bytes = parseAddress(address);
  if (!bytes) return 'not an IP address';
  return reasonFor(bytes);
}

export function reasonFor(bytes: Bytes): string | null {
  if (bytes.length === 4) return V4_RANGES.find(([prefix, bits]) => inPrefix(bytes, prefix, bits))?.[2] ?? null;
  const v4 = embeddedV4(bytes);
  if (v4) {
    const reason = reasonFor(v4);
    return reason ? `${reason}, as ${formatAddress(v4)} inside an IPv6 address` : null;
  }
  const special = V6_RANGES.find(([prefix, bits]) => inPrefix(bytes, prefix, bits));
  if (special) return special[2];
  return inPrefix(bytes, ...GLOBAL_UNICAST) ? null : 'reserved';
}

/** An IPv4-mapped IPv6 address as the IPv4 address it is; others unchanged. */
export function canonical(bytes: Bytes): Bytes {
  return bytes.length === 16 && inPrefix(bytes, ...MAPPED) ? bytes.slice(12) : bytes;
}
