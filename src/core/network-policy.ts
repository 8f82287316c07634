/**
 * What a run may reach (docs/design.md "Network egress"): `off` (nothing),
 * `allowlist` (only the domains its rules name, through the worker's proxy)
 * or `on` (anything public). Under `allowlist` and `on` alike, addresses in
 * the internal ranges (src/core/ip-address.ts) are refused unless the
 * operator allowed some for the environment.
 */
import { canonical, formatAddress, parseAddress, reasonFor } from './ip-address.js';

/** One allowlist rule: an exact host, or every name under a suffix (`*.example.com`); `port` null: 80 and 443. */
export interface DomainRule {
  /** Lowercase, no trailing dot; for a wildcard, the suffix without `*.`. */
  host: string;
  wildcard: boolean;
  port: number | null;
}

/** The ports a rule without one allows (the web's). */
export const DEFAULT_RULE_PORTS: readonly number[] = [80, 443];
export const MAX_DOMAIN_RULES = 200;
export const MAX_INTERNAL_RANGES = 50;

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const PRESET_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

/** Why `text` is not a domain rule, or null. */
export function domainRuleProblem(text: string): string | null {
  try {
    parseDomainRule(text);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * `example.com`, `*.example.com`, either with `:port`. Addresses are not
 * rules (a rule names who is trusted, not where they happen to be): an
 * internal one is the operator's `allow_internal_ranges`.
 */
export function parseDomainRule(text: string): DomainRule {
  const entry = text.trim().toLowerCase();
  const fail = (why: string): never => {
    throw new Error(`"${text}" is not a domain rule (${why}); write example.com, *.example.com or either with :port`);
  };
  if (entry.length === 0 || entry.length > 260) return fail('it must be 1 to 253 characters');
  if (entry.includes('/')) return fail('a URL or a path is not a rule: write the host alone, as example.com');
  if (entry.startsWith('[')) return fail('an address is not a domain');
  const colon = entry.lastIndexOf(':');
  let name = entry;
  let port: number | null = null;
  if (colon >= 0) {
    const written = entry.slice(colon + 1);
    port = Number(written);
    if (!/^\d{1,5}$/.test(written) || port < 1 || port > 65535) return fail('the port must be 1..65535');
    name = entry.slice(0, colon);
  }
  const wildcard = name.startsWith('*.');
  if (wildcard) name = name.slice(2);
  name = name.replace(/\.$/, '');
  if (name.includes('*')) return fail('"*" may only begin it, as "*.suffix"');
  if (name.includes(':') || name.startsWith('[') || parseAddress(name)) return fail('an address is not a domain');
  const labels = name.split('.');
  if (name.length > 253 || labels.some((label) => !LABEL.test(label))) return fail('not a host name');
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return fail('not a host name');
  if (wildcard && labels.length < 2) return fail('a wildcard needs a suffix of two labels or more, as *.example.com');
  return { host: name, wildcard, port };
}

export function formatDomainRule(rule: DomainRule): string {
  return `${rule.wildcard ? '*.' : ''}${rule.host}${rule.port !== null ? `:${rule.port}` : ''}`;
}

/**
 * Whether `rule` allows `host` (lowercase, no trailing dot) on `port`.
 * `*.x.com` matches `a.x.com` and `a.b.x.com`, not `x.com`. A rule without a
 * port allows the web's: 443 for a tunnel (TLS), 80 for plain HTTP (`kind`;
 * absent: either), so port 80 is never a raw tunnel unless a rule names it.
 */
export function ruleAllows(rule: DomainRule, host: string, port: number, kind?: 'connect' | 'http'): boolean {
  const defaults = kind === 'connect' ? [443] : kind === 'http' ? [80] : DEFAULT_RULE_PORTS;
  const portOk = rule.port === null ? defaults.includes(port) : rule.port === port;
  if (!portOk) return false;
  return rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host;
}

/** Why `text` is not a preset name, or null. */
export function presetNameProblem(text: string): string | null {
  return PRESET_NAME.test(text.trim().toLowerCase()) ? null : `"${text}" is not a preset name (letters, digits, "-" and "_", up to 40)`;
}

/**
 * An internal range the operator lets an environment reach (`10.20.0.0/16`,
 * `fd00:1::/48`, or one address; IPv4 /8 or narrower, IPv6 /16 or narrower),
 * canonical; throws naming what is wrong.
 */
export function parseInternalRange(text: string): string {
  const [address = '', bits, extra] = text.trim().split('/');
  const fail = (why: string): never => {
    throw new Error(`"${text}" is not an address range (${why}); write a CIDR range such as 10.20.0.0/16 or one address`);
  };
  if (extra !== undefined) return fail('more than one "/"');
  const bytes = parseAddress(address);
  if (!bytes) return fail('not an IP address before "/"');
  const max = bytes.length * 8;
  const length = bits === undefined ? max : Number(bits);
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || length > max)) return fail(`the prefix length must be 0..${max}`);
  if (length < (bytes.length === 4 ? 8 : 16)) return fail(`a range that wide (/${length}) is not an internal range`);
  // The network address itself: host bits cleared.
  const cleared = bytes.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    return byte & ((0xff << (8 - keep)) & 0xff);
  });
  return `${formatAddress(cleared)}/${length}`;
}

/**
 * Why an admin may not grant `text` as an internal range, or null: it must
 * parse, lie inside the internal ranges (a public one is reachable under `on`
 * already, and under `allowlist` its hosts are named by domain), and be
 * neither loopback (under `allowlist` the proxy runs on the worker's host,
 * whose loopback holds the platform's own services) nor link-local (the
 * cloud metadata endpoint).
 */
export function internalRangeProblem(text: string): string | null {
  let range: string;
  try {
    range = parseInternalRange(text);
  } catch (error) {
    return (error as Error).message;
  }
  const [address = ''] = range.split('/');
  const bytes = parseAddress(address);
  const why = bytes ? reasonFor(canonical(bytes)) : null;
  if (why === null) return `"${text}" is a public range: under "on" it is reachable already, and under "allowlist" name its hosts in allow_domains`;
  if (/loopback|link-local/.test(why)) return `"${text}" is ${why}: never reachable from a run (the worker's own services, a cloud's metadata endpoint)`;
  return null;
}

export type NetworkPresets = Readonly<Record<string, readonly string[]>>;

/**
 * The built-in presets: the hosts each ecosystem's package manager reaches by
 * default. Data, not code: the operator's `OZ_NETWORK_PRESETS_FILE` replaces
 * or adds any of them (a mirror, a private registry).
 */
export const BUILTIN_PRESETS: NetworkPresets = {
  npm: ['registry.npmjs.org', 'registry.yarnpkg.com', 'repo.yarnpkg.com'],
  pypi: ['pypi.org', 'files.pythonhosted.org'],
  crates: ['crates.io', 'index.crates.io', 'static.crates.io', 'static.rust-lang.org'],
  go: ['proxy.golang.org', 'sum.golang.org', 'index.golang.org'],
  maven: ['repo.maven.apache.org', 'repo1.maven.org', 'plugins.gradle.org', 'services.gradle.org'],
  rubygems: ['rubygems.org', 'index.rubygems.org', '*.rubygems.org'],
  debian: ['deb.debian.org', 'security.debian.org', 'archive.ubuntu.com', 'security.ubuntu.com', 'ports.ubuntu.com'],
  github: ['github.com', '*.github.com', '*.githubusercontent.com', 'ghcr.io'],
};

/** Whether `presets` has one named `name` (its own entry: nothing an object inherits). */
export function hasPreset(presets: NetworkPresets, name: string): boolean {
  return Object.hasOwn(presets, name);
}

/** Every rule of `presets` (named) and `domains`, parsed, without repeats. */
export function expandRules(domains: readonly string[], presetNames: readonly string[], presets: NetworkPresets): { rules: DomainRule[]; unknownPresets: string[] } {
  const seen = new Map<string, DomainRule>();
  const unknownPresets: string[] = [];
  const add = (text: string): void => {
    const rule = parseDomainRule(text);
    seen.set(formatDomainRule(rule), rule);
  };
  for (const name of presetNames) {
    // Own entries only: "constructor" is not a preset.
    const entries = hasPreset(presets, name) ? presets[name] : undefined;
    if (!entries) unknownPresets.push(name);
    else entries.forEach(add);
  }
  domains.forEach(add);
  return { rules: [...seen.values()], unknownPresets };
}

/**
 * An operator's presets file (`{"npm": ["registry.example.com"], …}`) over the
 * built-in ones; throws naming the first bad entry.
 */
export function parsePresets(json: unknown, source: string): NetworkPresets {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: must be a JSON object of preset name to a list of domain rules`);
  const out: Record<string, readonly string[]> = Object.assign(Object.create(null) as Record<string, readonly string[]>, BUILTIN_PRESETS);
  for (const [name, entries] of Object.entries(json)) {
    const problem = presetNameProblem(name);
    if (problem) throw new Error(`${source}: ${problem}`);
    if (!Array.isArray(entries) || entries.some((entry) => typeof entry !== 'string')) throw new Error(`${source}: "${name}" must be a list of domain rules`);
    if (entries.length > MAX_DOMAIN_RULES) throw new Error(`${source}: "${name}" has more than ${MAX_DOMAIN_RULES} rules`);
    for (const entry of entries as string[]) {
      const why = domainRuleProblem(entry);
      if (why) throw new Error(`${source}: "${name}": ${why}`);
    }
    out[name] = entries as string[];
  }
  return out;
}
