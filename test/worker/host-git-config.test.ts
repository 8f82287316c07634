import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { RemotePolicy } from '../../src/worker/provisioning/remote-policy.js';
import { forgeGitHost } from '../../src/worker/results/forge.js';

describe('host-side git settings', () => {
  it('defaults to limits and no allowed private destination', () => {
    expect(loadConfig({}, { HOME: '/home/u' }).hostGit).toEqual({ memoryBytes: 2048 * 1024 * 1024, maxFileBytes: 16 * 1024 * 1024 * 1024, allowedHosts: [] });
  });

  it('reads OZ_HOST_GIT_MEMORY_MB, OZ_HOST_GIT_MAX_FILE_MB and OZ_GIT_ALLOWED_HOSTS', () => {
    const config = loadConfig(
      {},
      { HOME: '/home/u', OZ_HOST_GIT_MEMORY_MB: '512', OZ_HOST_GIT_MAX_FILE_MB: '1024', OZ_GIT_ALLOWED_HOSTS: ' git.internal, 10.0.0.0/8,[::1]:9418 ,127.0.0.1:8080,,fd00::/8' },
    );
    expect(config.hostGit).toEqual({
      memoryBytes: 512 * 1024 * 1024,
      maxFileBytes: 1024 * 1024 * 1024,
      allowedHosts: ['git.internal', '10.0.0.0/8', '[::1]:9418', '127.0.0.1:8080', 'fd00::/8'],
    });
    // Every entry the setting accepts is one the policy reads.
    expect(() => new RemotePolicy({ allowedHosts: config.hostGit.allowedHosts })).not.toThrow();
  });

  it('refuses what it cannot read, naming the variable', () => {
    expect(() => loadConfig({}, { HOME: '/home/u', OZ_GIT_ALLOWED_HOSTS: 'git.internal,http://x/' })).toThrow(/OZ_GIT_ALLOWED_HOSTS/);
    expect(() => loadConfig({}, { HOME: '/home/u', OZ_GIT_ALLOWED_HOSTS: 'a b' })).toThrow(/OZ_GIT_ALLOWED_HOSTS/);
    expect(() => loadConfig({}, { HOME: '/home/u', OZ_HOST_GIT_MEMORY_MB: '10' })).toThrow(/OZ_HOST_GIT_MEMORY_MB/);
  });

  it("allows the GitHub git URL's host implicitly", () => {
    const forge = { githubUrl: 'https://github.com', githubApiUrl: 'https://api.github.com' };
    expect(forgeGitHost({ ...forge, githubGitUrl: 'https://github.com' })).toBe('github.com:443');
    expect(forgeGitHost({ ...forge, githubGitUrl: 'http://127.0.0.1:3000/git' })).toBe('127.0.0.1:3000');
    expect(forgeGitHost({ ...forge, githubGitUrl: 'https://[::1]' })).toBe('[::1]:443');
    expect(forgeGitHost({ ...forge, githubGitUrl: 'file:///srv/forge' })).toBeNull();
    expect(() => new RemotePolicy({ allowedHosts: ['[::1]:443', '127.0.0.1:3000', 'github.com:443'] })).not.toThrow();
  });
});
