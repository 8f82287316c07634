import { describe, expect, it } from 'vitest';
import { InsecureRegistryError } from '../../../src/worker/images/image-errors.js';
import { ImageReferenceSyntaxError, parseImageReference } from '../../../src/core/image-reference.js';
import { isLoopbackHost } from '../../../src/core/loopback-host.js';
import { requiresTls } from '../../../src/worker/images/registry-transport.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('image references', () => {
  it('qualifies Docker Hub short names', () => {
    expect(parseImageReference('node:22-bookworm')).toMatchObject({
      registry: 'docker.io',
      repository: 'library/node',
      tag: '22-bookworm',
      canonical: 'docker.io/library/node:22-bookworm',
    });
    expect(parseImageReference('node').canonical).toBe('docker.io/library/node:latest');
    expect(parseImageReference('someone/tool:1').canonical).toBe('docker.io/someone/tool:1');
  });

  it('keeps a registry host with a port, and IPv6 loopback', () => {
    expect(parseImageReference('127.0.0.1:5000/dev:1')).toMatchObject({ registry: '127.0.0.1:5000', host: '127.0.0.1', repository: 'dev', tag: '1' });
    expect(parseImageReference('localhost/team/dev')).toMatchObject({ registry: 'localhost', repository: 'team/dev', tag: 'latest' });
    expect(parseImageReference('[::1]:5000/dev:1')).toMatchObject({ registry: '[::1]:5000', host: '::1' });
  });

  it('takes digests, and gives skopeo the digest when a tag is there too', () => {
    expect(parseImageReference(`node@${DIGEST}`)).toMatchObject({ tag: null, digest: DIGEST, source: `docker.io/library/node@${DIGEST}` });
    expect(parseImageReference(`127.0.0.1:5000/dev:1@${DIGEST}`)).toMatchObject({ tag: '1', canonical: `127.0.0.1:5000/dev:1@${DIGEST}`, source: `127.0.0.1:5000/dev@${DIGEST}` });
  });

  it.each(['', 'Node:1', 'node:', 'node@sha256:123', 'a//b', 'ftp://127.0.0.1/x', '127.0.0.1:99999/x', 'node:bad tag', `-x/y`])('refuses %j, naming it', (reference) => {
    expect(() => parseImageReference(reference)).toThrow(ImageReferenceSyntaxError);
    expect(() => parseImageReference(reference)).toThrow(`"${reference}"`);
  });
});

describe('registry transport', () => {
  it('treats localhost, 127.0.0.0/8 and ::1 as loopback', () => {
    for (const host of ['localhost', '127.0.0.1', '127.3.2.1', '::1']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['128.0.0.1', 'registry.invalid', '10.0.0.1', '::2', 'localhost.invalid']) expect(isLoopbackHost(host)).toBe(false);
  });

  it('needs TLS off loopback unless the registry is listed as insecure', () => {
    expect(requiresTls(parseImageReference('127.0.0.1:5000/dev:1'), [])).toBe(false);
    expect(requiresTls(parseImageReference('registry.invalid/dev:1'), [])).toBe(true);
    expect(requiresTls(parseImageReference('registry.invalid:5000/dev:1'), ['registry.invalid:5000'])).toBe(false);
    expect(requiresTls(parseImageReference('http://registry.invalid/dev:1'), ['registry.invalid'])).toBe(false);
    expect(requiresTls(parseImageReference('http://127.0.0.1:5000/dev:1'), [])).toBe(false);
  });

  it('refuses plain HTTP to any other registry', () => {
    expect(() => requiresTls(parseImageReference('http://registry.invalid/dev:1'), [])).toThrow(InsecureRegistryError);
    expect(() => requiresTls(parseImageReference('http://registry.invalid:5000/dev:1'), ['registry.invalid:5001'])).toThrow('registry.invalid:5000');
  });
});
