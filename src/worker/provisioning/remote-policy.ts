import { lookup as dnsLookup } from 'node:dns/promises';
import { canonical, formatAddress, inPrefix, MAPPED, parseAddress, parseV4, parseV6, reasonFor, type Bytes } from '../../core/ip-address.js';

/**
 * Where host-side git may connect (issue 16, "SSRF through repository URLs").
 * The worker runs as root on hosts that can reach their loopback services, the
 * LAN and a cloud metadata endpoint, whatever the run's network policy: a
 * repository URL must not be a way there. Before any host-side git talks to a
 * network remote its host is resolved here and every address checked; git is
 * then pinned to the checked addresses, so it cannot resolve the name again
 * and get another answer (DNS rebinding):
 *
 * - http(s): `http.curloptResolve` (curl uses our addresses for that host and
 *   port; TLS still checks the name) and `http.followRedirects=false` (a
 *   redirect, and the dumb protocol's http-alternates, could lead anywhere);
 * - git:// and ssh: the URL is rewritten (`url.<pinned>.insteadOf`) to the
 *   checked address itself; ssh gets `HostKeyAlias` so that its known host
 *   keys are still looked up by name.
 *
 * Refused unless the operator allows them (`OZ_GIT_ALLOWED_HOSTS`): loopback,
 * private, shared (CGNAT), link-local (the metadata address), unique-local,
 * multicast, unspecified, documentation and other reserved ranges, in every
 * spelling (IPv4-mapped, NAT64 and 6to4 forms are judged by the IPv4 address
 * they carry). Only http, https, git and ssh remotes exist; `file://` and
 * local paths have their own policy (the mirror cache's roots).
 */

/** A destination was refused; `detail` is for the worker's log, never for the run's user. */
export class RemoteRefusedError extends Error {
  constructor(readonly detail: string) {
    super('the host is not reachable or not allowed');
  }
}

export type RemoteScheme = 'http' | 'https' | 'git' | 'ssh';

/** How git must run for one remote: config (passed in its environment) and environment. */
export interface PinnedRemote {
  config: [string, string][];
  env: Record<string, string>;
  /** What was checked, for the worker's log. */
  host: string;
  port: number;
  addresses: string[];
}

interface ParsedRemote {
  scheme: RemoteScheme;
  /** The host to resolve (no brackets; lowercased). */
  host: string;
  port: number;
  /** Whether the host is written as an IP address. */
  literal: boolean;
  /** The URL with the host replaced by `address` (git:// and ssh only). */
  withAddress: (address: string) => string;
}

const DEFAULT_PORTS: Record<RemoteScheme, number> = { http: 80, https: 443, git: 9418, ssh: 22 };
const SCHEMES: Record<string, RemoteScheme> = { http: 'http', https: 'https', git: 'git', ssh: 'ssh', 'git+ssh': 'ssh', 'ssh+git': 'ssh' };
const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/;
const LOOKUP_TIMEOUT_MS = 30_000;

export { parseAddress, refusalReason } from '../../core/ip-address.js';

// ---------------------------------------------------------------- allowlist

type AllowEntry = { kind: 'host'; host: string; port: number | null } | { kind: 'range'; prefix: Bytes; bits: number; port: number | null };

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) throw new Error(`"${entry}" is not a host, host:port, address or CIDR range (the port must be 1..65535)`);
  return port;
}

/**
 * One `OZ_GIT_ALLOWED_HOSTS` entry: a host name (`git.internal`), an address
 * (`10.0.0.5`, `::1`, `[::1]`), either with a port (`git.internal:9418`,
 * `[fd00::1]:443`), or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
 */
export function parseAllowEntry(text: string): AllowEntry {
  const entry = text.trim();
  const fail = (why: string): never => {
    throw new Error(`"${entry}" is not a host, host:port, address or CIDR range (${why})`);
  };
  if (entry.includes('/')) {
    const [address = '', bits = ''] = entry.split('/');
    const prefix = parseAddress(address);
    if (!prefix) return fail('not an address before "/"');
    const max = prefix.length * 8;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return fail(`the prefix length must be 0..${max}`);
    const [p, length] = canonicalRange(prefix, Number(bits));
    return { kind: 'range', prefix: p, bits: length, port: null };
  }
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed) {
    const prefix = parseV6(bracketed[1] as string);
    if (!prefix) return fail('not an IPv6 address in brackets');
    const [p, bits] = canonicalRange(prefix, 128);
    return { kind: 'range', prefix: p, bits, port: bracketed[2] === undefined ? null : parsePort(bracketed[2], entry) };
  }
  const v6 = parseV6(entry);
  if (v6) {
    const [p, bits] = canonicalRange(v6, 128);
    return { kind: 'range', prefix: p, bits, port: null };
  }
  const [host = '', port, extra] = entry.split(':');
  if (extra !== undefined) return fail('an IPv6 address with a port goes in brackets');
  const parsedPort = port === undefined ? null : parsePort(port, entry);
  const v4 = parseV4(host);
  if (v4) return { kind: 'range', prefix: v4, bits: 32, port: parsedPort };
  const name = host.toLowerCase().replace(/\.$/, '');
  if (!HOST_NAME.test(name) || /^[\d.]+$/.test(name)) return fail('not a host name');
  return { kind: 'host', host: name, port: parsedPort };
}

/** Ranges inside ::ffff:0:0/96 as IPv4 ranges, so that they match either spelling. */
function canonicalRange(prefix: Bytes, bits: number): [Bytes, number] {
  return prefix.length === 16 && bits >= 96 && inPrefix(prefix, ...MAPPED) ? [prefix.slice(12), bits - 96] : [prefix, bits];
}

// ---------------------------------------------------------------- URLs

/** Bracket an IPv6 address for a URL or curl's resolve list. */
function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Host and port of `authority` (`[user@]host[:port]`), as written. */
function splitAuthority(authority: string, url: string): { user: string | null; host: string; port: string | null } {
  if (authority.indexOf('@') !== authority.lastIndexOf('@')) throw new RemoteRefusedError(`${url}: more than one "@" before the host`);
  const at = authority.lastIndexOf('@');
  const user = at >= 0 ? authority.slice(0, at) : null;
  const hostPort = authority.slice(at + 1);
  const bracketed = /^(\[[^\]]*\])(?::(\d*))?$/.exec(hostPort);
  if (bracketed) return { user, host: bracketed[1] as string, port: bracketed[2] || null };
  const parts = hostPort.split(':');
  if (parts.length > 2) throw new RemoteRefusedError(`${url}: cannot tell the host from the port in "${hostPort}"`);
  return { user, host: parts[0] as string, port: parts[1] || null };
}

/** A host as written: a bracketed IPv6 address, an IPv4 address, or a name. */
function parseHost(written: string, url: string): { host: string; literal: boolean } {
  if (written.startsWith('[')) {
    const bytes = parseV6(written.slice(1, -1));
    if (!bytes) throw new RemoteRefusedError(`${url}: "${written}" is not an IPv6 address`);
    return { host: formatAddress(bytes), literal: true };
  }
  const v4 = parseV4(written);
  if (v4) return { host: formatAddress(v4), literal: true };
  const name = written.toLowerCase();
  // Anything else (odd numeric spellings like 0x7f.1 included) is resolved by
  // getaddrinfo below, exactly as git would, and judged by what it returns.
  if (!name || !/^[a-z0-9._-]+$/.test(name) || name.startsWith('-') || name.startsWith('.')) {
    throw new RemoteRefusedError(`${url}: "${written}" is not a host name git and this worker read the same way`);
  }
  return { host: name, literal: false };
}

/** The parts of a network repository URL that the policy judges, or a refusal. */
export function parseRemote(url: string): ParsedRemote {
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\s\x00-\x1f\x7f]/.test(url)) throw new RemoteRefusedError(`${JSON.stringify(url)}: whitespace or control characters`);
  // Parsers disagree on these (WHATWG reads "\\" as "/", curl does not): none is needed in a repository URL's host part.
  if (url.includes('\\')) throw new RemoteRefusedError(`${url}: backslashes are not allowed`);
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(url)) throw new RemoteRefusedError(`${url}: remote helpers ("transport::address") are not allowed`);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (scheme) {
    const kind = SCHEMES[(scheme[1] as string).toLowerCase()];
    if (!kind) throw new RemoteRefusedError(`${url}: only http, https, git and ssh remotes are allowed`);
    const rest = url.slice(scheme[0].length);
    const end = rest.search(kind === 'http' || kind === 'https' ? /[/?#]/ : /\//);
    const authority = end < 0 ? rest : rest.slice(0, end);
    const path = end < 0 ? '' : rest.slice(end);
    const { user, host: written, port: writtenPort } = splitAuthority(authority, url);
    const { host, literal } = parseHost(written, url);
    const port = writtenPort ? Number(writtenPort) : DEFAULT_PORTS[kind];
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RemoteRefusedError(`${url}: bad port`);
    if (kind === 'http' || kind === 'https') {
      // curl must read the same host as this check did.
      let whatwg: string;
      try {
        whatwg = new URL(url).hostname;
      } catch {
        throw new RemoteRefusedError(`${url}: not a valid URL`);
      }
      if (whatwg !== hostForUrl(host) && whatwg !== host) throw new RemoteRefusedError(`${url}: host "${written}" is read as "${whatwg}"`);
    }
    const prefix = `${scheme[1]}://${user !== null ? `${user}@` : ''}`;
    return { scheme: kind, host, port, literal, withAddress: (address) => `${prefix}${hostForUrl(address)}${writtenPort ? `:${writtenPort}` : ''}${path}` };
  }
  // scp-like ssh: [user@]host:path.
  const scp = /^(?:([^@/]*)@)?(\[[^\]]*\]|[^:/[\]@]+):(.*)$/.exec(url);
  if (!scp) throw new RemoteRefusedError(`${url}: not a repository URL this worker knows`);
  const [, user, written = '', path = ''] = scp;
  const { host, literal } = parseHost(written, url);
  return { scheme: 'ssh', host, port: DEFAULT_PORTS.ssh, literal, withAddress: (address) => `${user !== undefined ? `${user}@` : ''}${hostForUrl(address)}:${path}` };
}

// ---------------------------------------------------------------- policy

export type Lookup = (host: string) => Promise<string[]>;

/** getaddrinfo, as git itself would resolve: every address, IPv4 first. */
export const systemLookup: Lookup = async (host) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`resolving ${host} took more than ${LOOKUP_TIMEOUT_MS / 1000} s`)), LOOKUP_TIMEOUT_MS);
  });
  try {
    const found = await Promise.race([dnsLookup(host, { all: true, verbatim: false }), timeout]);
    return found.map((entry) => entry.address);
  } finally {
    clearTimeout(timer);
  }
};

/** Shell-quote one word for GIT_SSH_COMMAND (run by a shell). */
function shellWord(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface RemotePolicyOptions {
  /** Operator-allowed destinations (`OZ_GIT_ALLOWED_HOSTS` entries, plus the GitHub git URL's host). */
  allowedHosts?: readonly string[];
  /** How host names are resolved (tests inject one); default getaddrinfo. */
  lookup?: Lookup;
  /** The ssh command host-side git runs (without the per-host options this adds). */
  sshCommand?: string;
  /** The setting a refusal names as the way to allow a destination (default `OZ_GIT_ALLOWED_HOSTS`). */
  allowedSetting?: string;
}

export class RemotePolicy {
  private readonly allowed: AllowEntry[];
  private readonly lookup: Lookup;
  private readonly sshCommand: string | undefined;
  private readonly allowedSetting: string;

  constructor(options: RemotePolicyOptions = {}) {
    this.allowed = (options.allowedHosts ?? []).filter((entry) => entry.trim() !== '').map(parseAllowEntry);
    this.lookup = options.lookup ?? systemLookup;
    this.sshCommand = options.sshCommand;
    this.allowedSetting = options.allowedSetting ?? 'OZ_GIT_ALLOWED_HOSTS';
  }

  private hostAllowed(host: string, port: number): boolean {
    const name = host.replace(/\.$/, '');
    return this.allowed.some((entry) => entry.kind === 'host' && entry.host === name && (entry.port === null || entry.port === port));
  }

  private addressAllowed(bytes: Bytes, port: number): boolean {
    return this.allowed.some((entry) => entry.kind === 'range' && (entry.port === null || entry.port === port) && inPrefix(bytes, entry.prefix, entry.bits));
  }

  /**
   * Resolve and check `url`'s host; returns how git must run to reach
   * exactly the checked addresses, or throws a {@link RemoteRefusedError}.
   */
  async check(url: string): Promise<PinnedRemote> {
    const remote = parseRemote(url);
    let found: string[];
    if (remote.literal) {
      found = [remote.host];
    } else {
      try {
        found = await this.lookup(remote.host);
      } catch (error) {
        throw new RemoteRefusedError(`${url}: ${remote.host} does not resolve (${(error as Error).message})`);
      }
      if (found.length === 0) throw new RemoteRefusedError(`${url}: ${remote.host} has no address`);
    }
    const byName = !remote.literal && this.hostAllowed(remote.host, remote.port);
    const addresses: string[] = [];
    for (const address of found) {
      const bytes = parseAddress(address);
      if (!bytes) throw new RemoteRefusedError(`${url}: ${remote.host} resolved to "${address}", not an address`);
      const checked = canonical(bytes);
      const reason = reasonFor(checked);
      if (reason && !byName && !this.addressAllowed(checked, remote.port)) {
        throw new RemoteRefusedError(`${url}: ${remote.host} port ${remote.port} is ${formatAddress(checked)}, ${reason}, and not in ${this.allowedSetting}`);
      }
      addresses.push(formatAddress(checked));
    }
    const unique = [...new Set(addresses)];
    const pinned: PinnedRemote = { config: [], env: {}, host: remote.host, port: remote.port, addresses: unique };
    if (remote.scheme === 'http' || remote.scheme === 'https') {
      pinned.config.push(['http.followRedirects', 'false']);
      if (!remote.literal) pinned.config.push(['http.curloptResolve', `${remote.host}:${remote.port}:${unique.map(hostForUrl).join(',')}`]);
      return pinned;
    }
    // git:// and ssh connect to the first checked address (IPv4 first), written into the URL.
    const address = unique[0] as string;
    if (!remote.literal) pinned.config.push([`url.${remote.withAddress(address)}.insteadOf`, url]);
    if (remote.scheme === 'ssh' && this.sshCommand && !remote.literal) pinned.env.GIT_SSH_COMMAND = `${this.sshCommand} -o HostKeyAlias=${shellWord(remote.host)}`;
    return pinned;
  }
}
