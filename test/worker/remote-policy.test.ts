import { describe, expect, it } from 'vitest';
import { parseAllowEntry, refusalReason, RemotePolicy, RemoteRefusedError, type Lookup } from '../../src/worker/provisioning/remote-policy.js';

/**
 * The destination policy of host-side git over literal addresses and an
 * injected resolver: nothing here opens a connection or sends a DNS query.
 */

/** A resolver that knows only these names (anything else fails, like NXDOMAIN). */
function lookupOf(table: Record<string, string[]>): Lookup {
  return async (host) => {
    const found = table[host];
    if (!found) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return found;
  };
}

const PUBLIC = '93.184.216.34';
const PUBLIC6 = '2606:2800:220:1:248:1893:25c8:1946';

describe('the address policy', () => {
  it('refuses every special-purpose range, in every spelling', () => {
    const refused: Record<string, RegExp> = {
      '127.0.0.1': /loopback/,
      '127.255.255.254': /loopback/,
      '10.0.0.1': /private/,
      '10.255.255.255': /private/,
      '172.16.0.0': /private/,
      '172.31.255.255': /private/,
      '192.168.1.1': /private/,
      '169.254.169.254': /link-local/,
      '169.254.0.1': /link-local/,
      '100.64.0.0': /CGNAT/,
      '100.127.255.255': /CGNAT/,
      '0.0.0.0': /unspecified/,
      '0.1.2.3': /unspecified/,
      '224.0.0.1': /multicast/,
      '239.255.255.250': /multicast/,
      '240.0.0.1': /reserved/,
      '255.255.255.255': /reserved/,
      '192.0.2.1': /documentation/,
      '198.51.100.7': /documentation/,
      '203.0.113.9': /documentation/,
      '198.18.0.1': /benchmarking/,
      '192.0.0.8': /IETF/,
      '192.88.99.1': /6to4/,
      '::1': /loopback/,
      '0:0:0:0:0:0:0:1': /loopback/,
      '0000::0001': /loopback/,
      '::': /unspecified/,
      'fe80::1': /link-local/,
      'febf:ffff::1': /link-local/,
      'fec0::1': /site-local/,
      'fc00::1': /unique-local/,
      'fd12:3456:789a::1': /unique-local/,
      'ff02::1': /multicast/,
      'ff0e::1': /multicast/,
      '100::1': /discard/,
      '2001:db8::1': /documentation/,
      '2001::1': /IETF/, // Teredo
      '::127.0.0.1': /IPv4-compatible/,
      '64:ff9b:1::1': /NAT64/,
      '::ffff:127.0.0.1': /loopback, as 127\.0\.0\.1 inside an IPv6 address/,
      '::ffff:7f00:1': /loopback/,
      '::FFFF:7F00:0001': /loopback/,
      '::ffff:169.254.169.254': /link-local/,
      '::ffff:a9fe:a9fe': /link-local/,
      '::ffff:10.1.2.3': /private/,
      '0:0:0:0:0:ffff:192.168.0.1': /private/,
      '64:ff9b::a9fe:a9fe': /link-local.*, as 169\.254\.169\.254 inside/, // NAT64 of the metadata address
      '64:ff9b::127.0.0.1': /loopback/,
      '2002:7f00:1::1': /loopback/, // 6to4 of 127.0.0.1
      '2002:c0a8:101::1': /private/,
      '4000::1': /reserved/, // outside global unicast 2000::/3
    };
    for (const [address, reason] of Object.entries(refused)) {
      expect(refusalReason(address), address).toMatch(reason);
    }
  });

  it('lets public unicast addresses through, up to the edges of the ranges', () => {
    for (const address of [
      PUBLIC,
      '1.1.1.1',
      '172.15.255.255',
      '172.32.0.0',
      '100.63.255.255',
      '100.128.0.0',
      '169.253.255.255',
      '169.255.0.0',
      '11.0.0.0',
      '9.255.255.255',
      '126.255.255.255',
      '128.0.0.0',
      '223.255.255.255',
      '192.169.0.0',
      '198.20.0.0',
    ]) {
      expect(refusalReason(address), address).toBeNull();
    }
    for (const address of [PUBLIC6, '2606:4700::1111', '2a00:1450:4001::1', '::ffff:93.184.216.34', '64:ff9b::5db8:d822', '2002:5db8:d822::1']) {
      expect(refusalReason(address), address).toBeNull();
    }
  });

  it('does not take names, zone ids or odd IPv4 spellings for addresses', () => {
    for (const text of ['localhost', 'fe80::1%eth0', '0x7f.0.0.1', '2130706433', '127.1', '127.0.0.01', '1.2.3.256', '::ffff:127.0.0.1.1', '']) {
      expect(refusalReason(text), text).toBe('not an IP address');
    }
  });
});

describe('the allowlist entries', () => {
  it('takes hosts, host:port, addresses, [v6]:port and CIDR ranges', () => {
    expect(parseAllowEntry('git.internal')).toEqual({ kind: 'host', host: 'git.internal', port: null });
    expect(parseAllowEntry('Git.Internal.:9418')).toEqual({ kind: 'host', host: 'git.internal', port: 9418 });
    expect(parseAllowEntry('10.0.0.5')).toMatchObject({ kind: 'range', bits: 32, port: null });
    expect(parseAllowEntry('10.0.0.5:443')).toMatchObject({ kind: 'range', bits: 32, port: 443 });
    expect(parseAllowEntry('10.0.0.0/8')).toMatchObject({ kind: 'range', bits: 8 });
    expect(parseAllowEntry('::1')).toMatchObject({ kind: 'range', bits: 128, port: null });
    expect(parseAllowEntry('[::1]:8080')).toMatchObject({ kind: 'range', bits: 128, port: 8080 });
    expect(parseAllowEntry('fd00::/8')).toMatchObject({ kind: 'range', bits: 8 });
    expect(parseAllowEntry('::ffff:127.0.0.0/104')).toMatchObject({ kind: 'range', prefix: [127, 0, 0, 0], bits: 8 });
  });

  it('refuses entries it cannot read', () => {
    for (const entry of ['', 'host:0', 'host:70000', 'a:b:c', '10.0.0.0/33', '::1/129', 'not a host', '[nope]:1', '999.1.1.1', '-bad', 'host:port']) {
      expect(() => parseAllowEntry(entry), entry).toThrow(/is not a host/);
    }
  });
});

describe('RemotePolicy', () => {
  const refusal = async (policy: RemotePolicy, url: string): Promise<RemoteRefusedError> => {
    const error = await policy.check(url).catch((e: unknown) => e);
    expect(error, url).toBeInstanceOf(RemoteRefusedError);
    expect((error as Error).message).toBe('the host is not reachable or not allowed');
    return error as RemoteRefusedError;
  };

  it('refuses loopback, private and metadata destinations by default, named or literal', async () => {
    const policy = new RemotePolicy({
      lookup: lookupOf({
        'metadata.example.test': ['169.254.169.254'],
        'lan.example.test': ['192.168.1.10'],
        'mixed.example.test': [PUBLIC, '10.0.0.1'],
        'v6.example.test': ['::1'],
        'mapped.example.test': ['::ffff:127.0.0.1'],
      }),
    });
    for (const url of [
      'http://127.0.0.1:8080/repo.git',
      'https://[::1]/repo.git',
      'http://[::ffff:127.0.0.1]/repo.git',
      'http://169.254.169.254/latest/meta-data',
      'git://10.0.0.1/repo.git',
      'git://[fe80::1]/repo.git',
      'ssh://git@192.168.1.1/repo.git',
      'git@172.16.0.1:org/repo.git',
      'http://metadata.example.test/repo.git',
      'https://lan.example.test/repo.git',
      'git://v6.example.test/repo.git',
      'ssh://mapped.example.test/repo.git',
    ]) {
      await refusal(policy, url);
    }
    // One bad address among good ones refuses the host.
    expect((await refusal(policy, 'https://mixed.example.test/repo.git')).detail).toMatch(/10\.0\.0\.1, private/);
    // A name that does not resolve gets the same answer.
    expect((await refusal(policy, 'https://nowhere.example.test/repo.git')).detail).toMatch(/does not resolve/);
  });

  it('refuses spellings that git and this check might read differently, other schemes and helpers', async () => {
    const policy = new RemotePolicy({ lookup: lookupOf({}) });
    for (const url of [
      'http://0x7f.1/repo.git', // WHATWG and curl read 127.0.0.1
      'http://2130706433/repo.git',
      'http://127.1/repo.git',
      'https://%31%32%37.0.0.1/repo.git',
      'https://bücher.example/repo.git',
      'ftp://example.com/repo.git',
      'ext::sh -c touch% /tmp/pwned',
      'https::https://example.com/repo.git',
      'fd::3',
      'https://example.com/repo.git\nhttp://127.0.0.1/',
      'https://example.com /repo.git',
      'ssh://-oProxyCommand=touch%20x/repo.git',
      'git://a:b:c/repo.git',
      'http://example.com\\@127.0.0.1/repo.git', // WHATWG: example.com; curl: 127.0.0.1
      'http://127.0.0.1\\@example.com/repo.git',
      'http://a@127.0.0.1@example.com/repo.git',
      'ssh://git@127.0.0.1@example.com/repo.git',
    ]) {
      await refusal(policy, url);
    }
  });

  it('judges odd numeric spellings by what the resolver makes of them', async () => {
    // getaddrinfo reads these as 127.0.0.1, as git's own resolution would.
    const policy = new RemotePolicy({ lookup: lookupOf({ '0x7f.1': ['127.0.0.1'], '2130706433': ['127.0.0.1'], '0177.0.0.1': ['127.0.0.1'] }) });
    for (const url of ['git://0x7f.1/repo.git', 'git://2130706433/repo.git', 'ssh://0177.0.0.1/repo.git']) {
      expect((await refusal(policy, url)).detail, url).toMatch(/loopback/);
    }
  });

  it('pins git to the checked addresses: curl resolve for http(s), the address itself for git:// and ssh', async () => {
    const policy = new RemotePolicy({ lookup: lookupOf({ 'git.example.test': [PUBLIC, PUBLIC6] }), sshCommand: 'ssh -F /dev/null' });
    expect((await policy.check('https://git.example.test/org/repo.git')).config).toEqual([
      ['http.followRedirects', 'false'],
      ['http.curloptResolve', `git.example.test:443:${PUBLIC},[${PUBLIC6}]`],
    ]);
    expect((await policy.check('http://Git.Example.Test:8080/repo.git')).config).toContainEqual(['http.curloptResolve', `git.example.test:8080:${PUBLIC},[${PUBLIC6}]`]);
    // A literal needs no pin, only the redirect rule.
    expect((await policy.check(`https://${PUBLIC}/repo.git`)).config).toEqual([['http.followRedirects', 'false']]);
    expect((await policy.check('git://git.example.test/repo.git')).config).toEqual([[`url.git://${PUBLIC}/repo.git.insteadOf`, 'git://git.example.test/repo.git']]);
    expect((await policy.check('git://git.example.test:9419/repo.git')).config).toEqual([[`url.git://${PUBLIC}:9419/repo.git.insteadOf`, 'git://git.example.test:9419/repo.git']]);
    const ssh = await policy.check('ssh://git@git.example.test:2222/org/repo.git');
    expect(ssh.config).toEqual([[`url.ssh://git@${PUBLIC}:2222/org/repo.git.insteadOf`, 'ssh://git@git.example.test:2222/org/repo.git']]);
    expect(ssh.env).toEqual({ GIT_SSH_COMMAND: "ssh -F /dev/null -o HostKeyAlias='git.example.test'" });
    const scp = await policy.check('git@git.example.test:org/repo.git');
    expect(scp.config).toEqual([[`url.git@${PUBLIC}:org/repo.git.insteadOf`, 'git@git.example.test:org/repo.git']]);
    const v6 = new RemotePolicy({ lookup: lookupOf({ 'six.example.test': [PUBLIC6] }) });
    expect((await v6.check('git@six.example.test:repo.git')).config).toEqual([[`url.git@[${PUBLIC6}]:repo.git.insteadOf`, 'git@six.example.test:repo.git']]);
    expect((await v6.check('git://six.example.test/repo.git')).config).toEqual([[`url.git://[${PUBLIC6}]/repo.git.insteadOf`, 'git://six.example.test/repo.git']]);
  });

  it('allows what the operator allows: names, ports, addresses and ranges', async () => {
    const lookup = lookupOf({ 'git.internal': ['10.1.2.3'], localhost: ['127.0.0.1'], 'other.internal': ['10.9.9.9'] });
    const policy = new RemotePolicy({ lookup, allowedHosts: ['git.internal', 'localhost:9418', '127.0.0.1:8080', '192.168.0.0/16', '[::1]:443', 'fd00::/8'] });
    await expect(policy.check('https://git.internal/repo.git')).resolves.toMatchObject({ addresses: ['10.1.2.3'] });
    await expect(policy.check('git://git.internal:1234/repo.git')).resolves.toBeDefined();
    await expect(policy.check('git://localhost/repo.git')).resolves.toBeDefined();
    await refusal(policy, 'http://localhost/repo.git'); // port 80, not 9418
    await expect(policy.check('http://127.0.0.1:8080/repo.git')).resolves.toBeDefined();
    await expect(policy.check('http://[::ffff:127.0.0.1]:8080/repo.git')).resolves.toBeDefined();
    await refusal(policy, 'http://127.0.0.1:8081/repo.git');
    await refusal(policy, 'http://127.0.0.2:8080/repo.git');
    await expect(policy.check('git://192.168.44.1/repo.git')).resolves.toBeDefined();
    await expect(policy.check('https://[::1]/repo.git')).resolves.toBeDefined();
    await expect(policy.check('https://[fd00::5]/repo.git')).resolves.toBeDefined();
    await refusal(policy, 'https://[fe80::1]/repo.git');
    // Allowing one private host allows no other.
    await refusal(policy, 'https://other.internal/repo.git');
    await refusal(policy, 'https://10.1.2.3/repo.git');
  });
});
