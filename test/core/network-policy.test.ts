import { describe, expect, it } from 'vitest';
import {
  BUILTIN_PRESETS,
  DEFAULT_RULE_PORTS,
  domainRuleProblem,
  expandRules,
  formatDomainRule,
  MAX_DOMAIN_RULES,
  parseDomainRule,
  parseInternalRange,
  parsePresets,
  presetNameProblem,
  ruleAllows,
} from '../../src/core/network-policy.js';
import { boundAudit, emptyCounts, MAX_AUDIT_HOSTS, mergeAudits, type AuditHost, type NetworkAudit } from '../../src/core/network-audit.js';

/** The network policy's pure parts: domain rules, internal ranges, presets and the audit's arithmetic. */

describe('parseDomainRule', () => {
  it('reads an exact host, a wildcard and either with a port, lowercased and trimmed', () => {
    expect(parseDomainRule('example.com')).toEqual({ host: 'example.com', wildcard: false, port: null });
    expect(parseDomainRule('  Registry.NPMJS.org ')).toEqual({ host: 'registry.npmjs.org', wildcard: false, port: null });
    expect(parseDomainRule('*.example.com')).toEqual({ host: 'example.com', wildcard: true, port: null });
    expect(parseDomainRule('example.com:8443')).toEqual({ host: 'example.com', wildcard: false, port: 8443 });
    expect(parseDomainRule('*.Example.com:1')).toEqual({ host: 'example.com', wildcard: true, port: 1 });
    expect(parseDomainRule('example.com:65535')).toEqual({ host: 'example.com', wildcard: false, port: 65535 });
  });

  it('drops a trailing dot and accepts single-label hosts, underscores and hyphens inside labels', () => {
    expect(parseDomainRule('example.com.')).toEqual({ host: 'example.com', wildcard: false, port: null });
    expect(parseDomainRule('*.example.com.:443')).toEqual({ host: 'example.com', wildcard: true, port: 443 });
    expect(parseDomainRule('localhost').host).toBe('localhost');
    expect(parseDomainRule('_dmarc.my-host.example').host).toBe('_dmarc.my-host.example');
    expect(parseDomainRule('1password.com').host).toBe('1password.com');
  });

  it('refuses an empty or overlong entry', () => {
    expect(() => parseDomainRule('')).toThrow(/it must be 1 to 253 characters/);
    expect(() => parseDomainRule('   ')).toThrow(/it must be 1 to 253 characters/);
    expect(() => parseDomainRule('a'.repeat(261))).toThrow(/it must be 1 to 253 characters/);
    // 254 characters of name: within the entry's bound, past a host name's.
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`;
    expect(long.length).toBe(254);
    expect(() => parseDomainRule(long)).toThrow(/not a host name/);
  });

  it('refuses a bad port', () => {
    for (const text of ['example.com:0', 'example.com:65536', 'example.com:99999', 'example.com:', 'example.com:http', 'example.com:-1', 'example.com:123456']) {
      expect(() => parseDomainRule(text), text).toThrow(/the port must be 1\.\.65535/);
    }
  });

  it('refuses "*" anywhere but at the start, and a wildcard over a single label', () => {
    expect(() => parseDomainRule('a.*.example.com')).toThrow(/"\*" may only begin it/);
    expect(() => parseDomainRule('*example.com')).toThrow(/"\*" may only begin it/);
    expect(() => parseDomainRule('*')).toThrow(/"\*" may only begin it/);
    expect(() => parseDomainRule('*.*.example.com')).toThrow(/"\*" may only begin it/);
    expect(() => parseDomainRule('*.com')).toThrow(/a wildcard needs a suffix of two labels or more/);
  });

  it('refuses addresses in every spelling', () => {
    for (const text of ['10.0.0.1', '10.0.0.1:443', '127.0.0.1', '::1', '[::1]', '[::1]:443', 'fd00::1', '::ffff:127.0.0.1', '169.254.169.254:80']) {
      expect(() => parseDomainRule(text), text).toThrow(/is not a domain rule/);
    }
    expect(() => parseDomainRule('10.0.0.1')).toThrow(/an address is not a domain/);
    expect(() => parseDomainRule('::1')).toThrow(/an address is not a domain/);
  });

  it('refuses what is not a host name, naming the entry and how to write one', () => {
    for (const text of [
      'exa mple.com',
      '-bad.com',
      'bad-.com',
      'a..b',
      '.example.com',
      'example.123',
      '1.2.3',
      'http://example.com',
      'example.com/path',
      'ex!ample.com',
      `${'a'.repeat(64)}.com`,
    ]) {
      expect(() => parseDomainRule(text), text).toThrow(/not a host name|the port must be|a URL or a path is not a rule|an address is not a domain/);
    }
    expect(() => parseDomainRule('Bad Host')).toThrow('"Bad Host" is not a domain rule (not a host name); write example.com, *.example.com or either with :port');
  });

  it('domainRuleProblem is the message, or null', () => {
    expect(domainRuleProblem('example.com')).toBeNull();
    expect(domainRuleProblem('*.com')).toMatch(/^"\*\.com" is not a domain rule \(a wildcard needs/);
  });
});

describe('formatDomainRule', () => {
  it('writes a rule back as it is read', () => {
    for (const text of ['example.com', '*.example.com', 'example.com:8080', '*.a.example.com:443']) {
      expect(formatDomainRule(parseDomainRule(text))).toBe(text);
    }
    expect(formatDomainRule(parseDomainRule(' *.Example.COM.:80 '))).toBe('*.example.com:80');
    expect(formatDomainRule({ host: 'x.org', wildcard: false, port: null })).toBe('x.org');
  });
});

describe('ruleAllows', () => {
  it('a rule without a port allows 80 and 443 only', () => {
    expect(DEFAULT_RULE_PORTS).toEqual([80, 443]);
    const rule = parseDomainRule('example.com');
    expect(ruleAllows(rule, 'example.com', 80)).toBe(true);
    expect(ruleAllows(rule, 'example.com', 443)).toBe(true);
    for (const port of [22, 8080, 8443, 1, 65535]) expect(ruleAllows(rule, 'example.com', port), String(port)).toBe(false);
  });

  it('a rule with a port allows that port only', () => {
    const rule = parseDomainRule('example.com:8443');
    expect(ruleAllows(rule, 'example.com', 8443)).toBe(true);
    expect(ruleAllows(rule, 'example.com', 443)).toBe(false);
    expect(ruleAllows(rule, 'example.com', 80)).toBe(false);
  });

  it('an exact rule matches that host only', () => {
    const rule = parseDomainRule('example.com');
    expect(ruleAllows(rule, 'a.example.com', 443)).toBe(false);
    expect(ruleAllows(rule, 'example.com.evil.test', 443)).toBe(false);
    expect(ruleAllows(rule, 'notexample.com', 443)).toBe(false);
  });

  it('a wildcard matches names under the suffix at any depth, not the suffix itself', () => {
    const rule = parseDomainRule('*.example.com');
    expect(ruleAllows(rule, 'a.example.com', 443)).toBe(true);
    expect(ruleAllows(rule, 'a.b.example.com', 80)).toBe(true);
    expect(ruleAllows(rule, 'example.com', 443)).toBe(false);
    expect(ruleAllows(rule, 'badexample.com', 443)).toBe(false);
    expect(ruleAllows(rule, 'a.example.com.evil.test', 443)).toBe(false);
    expect(ruleAllows(rule, 'a.example.com', 8080)).toBe(false);
    expect(ruleAllows(parseDomainRule('*.example.com:8080'), 'a.example.com', 8080)).toBe(true);
  });
});

describe('parseInternalRange', () => {
  it('canonicalises a CIDR range, clearing host bits', () => {
    expect(parseInternalRange('10.20.0.0/16')).toBe('10.20.0.0/16');
    expect(parseInternalRange('10.20.30.40/16')).toBe('10.20.0.0/16');
    expect(parseInternalRange('172.16.5.4/12')).toBe('172.16.0.0/12');
    expect(parseInternalRange('10.0.0.1/31')).toBe('10.0.0.0/31');
    expect(parseInternalRange('192.168.1.77/25')).toBe('192.168.1.0/25');
    expect(parseInternalRange(' 10.0.0.0/8 ')).toBe('10.0.0.0/8');
    expect(parseInternalRange('fd00:1::5/48')).toBe('fd00:1::/48');
    expect(parseInternalRange('fd12:3456:789a::1/16')).toBe('fd12::/16');
    expect(parseInternalRange('FD12:3456:789A::1/48')).toBe('fd12:3456:789a::/48');
  });

  it('reads one address as its full-length range', () => {
    expect(parseInternalRange('10.1.2.3')).toBe('10.1.2.3/32');
    expect(parseInternalRange('127.0.0.1')).toBe('127.0.0.1/32');
    expect(parseInternalRange('::1')).toBe('::1/128');
    expect(parseInternalRange('fd00:0:0:0:0:0:0:1')).toBe('fd00::1/128');
  });

  it('refuses a range too wide to be internal', () => {
    expect(() => parseInternalRange('10.0.0.0/7')).toThrow('a range that wide (/7) is not an internal range');
    expect(() => parseInternalRange('0.0.0.0/0')).toThrow(/a range that wide \(\/0\)/);
    expect(() => parseInternalRange('fd00::/15')).toThrow(/a range that wide \(\/15\)/);
    expect(parseInternalRange('10.0.0.0/8')).toBe('10.0.0.0/8');
    expect(parseInternalRange('fd00::/16')).toBe('fd00::/16');
  });

  it('refuses bad prefix lengths, several "/" and what is not an address', () => {
    expect(() => parseInternalRange('10.0.0.0/33')).toThrow(/the prefix length must be 0\.\.32/);
    expect(() => parseInternalRange('fd00::/129')).toThrow(/the prefix length must be 0\.\.128/);
    expect(() => parseInternalRange('10.0.0.0/')).toThrow(/the prefix length must be/);
    expect(() => parseInternalRange('10.0.0.0/abc')).toThrow(/the prefix length must be/);
    expect(() => parseInternalRange('10.0.0.0/-8')).toThrow(/the prefix length must be/);
    expect(() => parseInternalRange('10.0.0.0/8/8')).toThrow(/more than one "\/"/);
    expect(() => parseInternalRange('example.com/8')).toThrow(/not an IP address before "\/"/);
    expect(() => parseInternalRange('')).toThrow(/not an IP address/);
    expect(() => parseInternalRange('10.0.0.256/32')).toThrow(/not an IP address/);
    expect(() => parseInternalRange('010.0.0.1')).toThrow(/not an IP address/);
    expect(() => parseInternalRange('fe80::1%eth0')).toThrow(/not an IP address/);
    expect(() => parseInternalRange('nope')).toThrow('"nope" is not an address range (not an IP address before "/"); write a CIDR range such as 10.20.0.0/16 or one address');
  });
});

describe('presetNameProblem', () => {
  it('accepts letters (read lowercase), digits, "-" and "_", up to 40, starting with a letter or digit', () => {
    for (const name of ['npm', 'NPM', 'my-mirror', 'a_b', '9lives', 'a'.repeat(40)]) expect(presetNameProblem(name), name).toBeNull();
    for (const name of ['', '-npm', '_npm', 'my mirror', 'a.b', 'a'.repeat(41), 'ünï']) {
      expect(presetNameProblem(name), name).toBe(`"${name}" is not a preset name (letters, digits, "-" and "_", up to 40)`);
    }
  });
});

describe('expandRules', () => {
  it('parses the presets named and the domains, without repeats, presets first', () => {
    const { rules, unknownPresets } = expandRules(['example.com', 'EXAMPLE.com', '*.x.org:8080', 'registry.npmjs.org'], ['npm'], BUILTIN_PRESETS);
    expect(unknownPresets).toEqual([]);
    expect(rules.map(formatDomainRule)).toEqual(['registry.npmjs.org', 'registry.yarnpkg.com', 'repo.yarnpkg.com', 'example.com', '*.x.org:8080']);
  });

  it('keeps rules that differ by port or wildcard apart', () => {
    const { rules } = expandRules(['example.com', 'example.com:443', '*.example.com'], [], BUILTIN_PRESETS);
    expect(rules).toEqual([
      { host: 'example.com', wildcard: false, port: null },
      { host: 'example.com', wildcard: false, port: 443 },
      { host: 'example.com', wildcard: true, port: null },
    ]);
  });

  it('names presets it does not know, and still expands the others', () => {
    const { rules, unknownPresets } = expandRules([], ['nope', 'github', 'also-nope'], BUILTIN_PRESETS);
    expect(unknownPresets).toEqual(['nope', 'also-nope']);
    expect(rules.map(formatDomainRule)).toEqual(['github.com', '*.github.com', '*.githubusercontent.com', 'ghcr.io']);
  });

  // Bug: a preset name that is a property of Object.prototype ("constructor"
  // passes presetNameProblem, so an environment may store it) is looked up on
  // the prototype: expandRules throws "entries.forEach is not a function"
  // instead of reporting it in unknownPresets.
  it('reports a preset named like an Object.prototype property as unknown', () => {
    expect(presetNameProblem('constructor')).toBeNull();
    expect(expandRules([], ['constructor'], BUILTIN_PRESETS)).toEqual({ rules: [], unknownPresets: ['constructor'] });
  });

  it('uses the presets given, not the built-in ones', () => {
    const presets = parsePresets({ npm: ['npm.mirror.example'] }, 'presets.json');
    expect(expandRules([], ['npm'], presets).rules.map(formatDomainRule)).toEqual(['npm.mirror.example']);
    expect(expandRules([], ['npm'], {}).unknownPresets).toEqual(['npm']);
  });

  it('throws on a bad domain', () => {
    expect(() => expandRules(['10.0.0.1'], [], BUILTIN_PRESETS)).toThrow(/an address is not a domain/);
  });

  it('every built-in preset parses', () => {
    const { rules, unknownPresets } = expandRules([], Object.keys(BUILTIN_PRESETS), BUILTIN_PRESETS);
    expect(unknownPresets).toEqual([]);
    expect(rules.length).toBe(Object.values(BUILTIN_PRESETS).flat().length);
  });
});

describe('parsePresets', () => {
  it('lays the file over the built-in presets, replacing and adding', () => {
    const presets = parsePresets({ npm: ['registry.example.com'], internal: ['*.corp.example', 'git.corp.example:8443'] }, 'presets.json');
    expect(presets.npm).toEqual(['registry.example.com']);
    expect(presets.internal).toEqual(['*.corp.example', 'git.corp.example:8443']);
    expect(presets.pypi).toEqual(BUILTIN_PRESETS.pypi);
    expect(Object.keys(presets).sort()).toEqual([...Object.keys(BUILTIN_PRESETS), 'internal'].sort());
    // The built-in ones are not changed.
    expect(BUILTIN_PRESETS.npm).toEqual(['registry.npmjs.org', 'registry.yarnpkg.com', 'repo.yarnpkg.com']);
    expect(parsePresets({}, 'presets.json')).toEqual(BUILTIN_PRESETS);
  });

  it('an empty list empties a preset', () => {
    expect(parsePresets({ npm: [] }, 'f').npm).toEqual([]);
  });

  it('refuses what is not an object of lists', () => {
    for (const json of [null, [], 'npm', 3, true, undefined]) {
      expect(() => parsePresets(json, 'presets.json'), JSON.stringify(json)).toThrow('presets.json: must be a JSON object of preset name to a list of domain rules');
    }
    expect(() => parsePresets({ npm: 'registry.example.com' }, 'f.json')).toThrow('f.json: "npm" must be a list of domain rules');
    expect(() => parsePresets({ npm: [1] }, 'f.json')).toThrow('f.json: "npm" must be a list of domain rules');
    expect(() => parsePresets({ npm: { a: 'b' } }, 'f.json')).toThrow('f.json: "npm" must be a list of domain rules');
  });

  it('refuses a bad preset name', () => {
    expect(() => parsePresets({ 'My Mirror': ['a.example'] }, 'f.json')).toThrow('f.json: "My Mirror" is not a preset name');
  });

  it('refuses a bad rule, naming the preset and the rule', () => {
    expect(() => parsePresets({ mirror: ['ok.example', '10.0.0.1'] }, 'f.json')).toThrow(/^f\.json: "mirror": "10\.0\.0\.1" is not a domain rule \(an address is not a domain\)/);
  });

  it('refuses more rules than a preset may have', () => {
    const many = Array.from({ length: MAX_DOMAIN_RULES + 1 }, (_, i) => `h${i}.example`);
    expect(() => parsePresets({ big: many }, 'f.json')).toThrow(`f.json: "big" has more than ${MAX_DOMAIN_RULES} rules`);
    expect(parsePresets({ big: many.slice(0, MAX_DOMAIN_RULES) }, 'f.json').big).toHaveLength(MAX_DOMAIN_RULES);
  });
});

function host(name: string, port: number, counts: Partial<AuditHost> = {}): AuditHost {
  return { host: name, port, ...emptyCounts(), ...counts };
}

function audit(hosts: AuditHost[], policy: NetworkAudit['policy'] = 'allowlist', other = emptyCounts()): NetworkAudit {
  return { policy, hosts, other };
}

/** Every count of an audit, summed over its hosts and `other`. */
function totals(a: NetworkAudit): { connections: number; denied: number; bytes_sent: number; bytes_received: number } {
  const sum = { ...a.other };
  for (const h of a.hosts) {
    sum.connections += h.connections;
    sum.denied += h.denied;
    sum.bytes_sent += h.bytes_sent;
    sum.bytes_received += h.bytes_received;
  }
  return sum;
}

describe('mergeAudits', () => {
  it('with nothing earlier, is the later audit', () => {
    const later = audit([host('a.example', 443, { connections: 1 })]);
    expect(mergeAudits(null, later)).toEqual(later);
  });

  it('adds the counts of the same host and port, keeps others apart, and the later policy wins', () => {
    const earlier = audit(
      [host('a.example', 443, { connections: 2, bytes_sent: 10, bytes_received: 100 }), host('b.example', 80, { denied: 1, denied_reason: 'not in the allowlist' })],
      'allowlist',
      {
        connections: 1,
        denied: 2,
        bytes_sent: 3,
        bytes_received: 4,
      },
    );
    const later = audit([host('a.example', 443, { connections: 1, bytes_sent: 5, bytes_received: 50 }), host('a.example', 8443, { connections: 1 })], 'on', {
      connections: 10,
      denied: 20,
      bytes_sent: 30,
      bytes_received: 40,
    });
    const merged = mergeAudits(earlier, later);
    expect(merged.policy).toBe('on');
    expect(merged.hosts).toEqual([
      host('a.example', 443, { connections: 3, bytes_sent: 15, bytes_received: 150 }),
      host('b.example', 80, { denied: 1, denied_reason: 'not in the allowlist' }),
      host('a.example', 8443, { connections: 1 }),
    ]);
    expect(merged.other).toEqual({ connections: 11, denied: 22, bytes_sent: 33, bytes_received: 44 });
  });

  it('keeps the last refusal reason, or the earlier one when the later has none', () => {
    const earlier = audit([
      host('a.example', 443, { denied: 1, denied_reason: 'not in the allowlist' }),
      host('b.example', 443, { denied: 1, denied_reason: 'resolves to 10.0.0.1, private' }),
    ]);
    const later = audit([host('a.example', 443, { denied: 1, denied_reason: 'resolves to 127.0.0.1, loopback' }), host('b.example', 443, { connections: 1 })]);
    const merged = mergeAudits(earlier, later);
    expect(merged.hosts.find((h) => h.host === 'a.example')).toMatchObject({ denied: 2, denied_reason: 'resolves to 127.0.0.1, loopback' });
    expect(merged.hosts.find((h) => h.host === 'b.example')).toMatchObject({ denied: 1, connections: 1, denied_reason: 'resolves to 10.0.0.1, private' });
  });

  it('does not change its inputs', () => {
    const earlier = audit([host('a.example', 443, { connections: 1 })]);
    const later = audit([host('a.example', 443, { connections: 1 })]);
    const before = JSON.stringify([earlier, later]);
    mergeAudits(earlier, later);
    mergeAudits(earlier, later);
    expect(JSON.stringify([earlier, later])).toBe(before);
  });

  it('stays bounded, summing the rest into other without losing a count', () => {
    const many = (prefix: string, n: number): AuditHost[] => Array.from({ length: n }, (_, i) => host(`${prefix}${i}.example`, 443, { connections: 1, bytes_sent: i }));
    const earlier = audit(many('e', 150));
    const later = audit(many('l', 150));
    const merged = mergeAudits(earlier, later);
    expect(merged.hosts).toHaveLength(MAX_AUDIT_HOSTS);
    expect(merged.other.connections).toBe(300 - MAX_AUDIT_HOSTS);
    expect(totals(merged)).toEqual({ ...totals(earlier), connections: 300, bytes_sent: totals(earlier).bytes_sent + totals(later).bytes_sent });
  });
});

describe('boundAudit', () => {
  it('leaves an audit within the bound as it is', () => {
    const within = audit(Array.from({ length: MAX_AUDIT_HOSTS }, (_, i) => host(`h${i}.example`, 443, { connections: 1 })));
    expect(boundAudit(within)).toBe(within);
  });

  it('keeps the busiest destinations and sums the rest into other', () => {
    expect(MAX_AUDIT_HOSTS).toBe(200);
    // Weights 1..250: h0 is the lightest.
    const hosts = Array.from({ length: 250 }, (_, i) => host(`h${i}.example`, 443, { bytes_received: i + 1 }));
    const start = { connections: 1, denied: 1, bytes_sent: 1, bytes_received: 1 };
    const bounded = boundAudit(audit(hosts, 'on', start));
    expect(bounded.policy).toBe('on');
    expect(bounded.hosts).toHaveLength(MAX_AUDIT_HOSTS);
    expect(bounded.hosts[0]?.host).toBe('h249.example');
    const kept = new Set(bounded.hosts.map((h) => h.host));
    for (let i = 0; i < 50; i++) expect(kept.has(`h${i}.example`)).toBe(false);
    for (let i = 50; i < 250; i++) expect(kept.has(`h${i}.example`)).toBe(true);
    // 1 + (1 + … + 50)
    expect(bounded.other).toEqual({ connections: 1, denied: 1, bytes_sent: 1, bytes_received: 1 + (50 * 51) / 2 });
    expect(start).toEqual({ connections: 1, denied: 1, bytes_sent: 1, bytes_received: 1 });
  });

  it('weighs connections, refusals and bytes alike', () => {
    const hosts = [
      ...Array.from({ length: MAX_AUDIT_HOSTS }, (_, i) => host(`filler${i}.example`, 443, { connections: 5 })),
      host('denied.example', 443, { denied: 6 }),
      host('bytes.example', 443, { bytes_sent: 3, bytes_received: 3 }),
      host('quiet.example', 443, { connections: 1 }),
    ];
    const bounded = boundAudit(audit(hosts));
    const kept = bounded.hosts.map((h) => h.host);
    expect(kept.slice(0, 2).sort()).toEqual(['bytes.example', 'denied.example']);
    expect(kept).not.toContain('quiet.example');
    expect(bounded.other.connections).toBe(1 + 5 + 5);
  });
});
