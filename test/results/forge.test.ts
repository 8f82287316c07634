import { describe, expect, it } from 'vitest';
import { githubAuthEnv, githubRepo, gitUrl } from '../../src/worker/results/forge.js';

const GITHUB = { githubUrl: 'https://github.com', githubGitUrl: 'https://github.com', githubApiUrl: 'https://api.github.com' };
const DOUBLE = { ...GITHUB, githubGitUrl: 'file:///srv/forge' };

describe('GitHub remotes', () => {
  it('knows a GitHub repository URL in its spellings, and nothing else', () => {
    for (const url of ['https://github.com/acme/web', 'https://github.com/acme/web.git', 'https://github.com/acme/web/']) {
      expect(githubRepo(url, GITHUB)).toEqual({ owner: 'acme', repo: 'web' });
    }
    for (const url of [
      'https://gitlab.com/acme/web.git',
      'https://github.com.evil.test/acme/web',
      'https://github.com/acme',
      'https://github.com/acme/web/tree/main',
      'file:///srv/acme/web.git',
    ]) {
      expect(githubRepo(url, GITHUB)).toBeNull();
    }
  });

  it('rewrites where GitHub repositories are fetched from, only them', () => {
    expect(gitUrl('https://github.com/acme/web', DOUBLE)).toBe('file:///srv/forge/acme/web.git');
    expect(gitUrl('https://example.test/acme/web.git', DOUBLE)).toBe('https://example.test/acme/web.git');
  });

  it('sends the token as a header to GitHub over https only, never in a URL or argument', () => {
    const env = githubAuthEnv('https://github.com/acme/web.git', 'ghp_secret', GITHUB);
    expect(env).toEqual({
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from('x-access-token:ghp_secret').toString('base64')}`,
    });
    expect(githubAuthEnv('https://example.test/acme/web.git', 'ghp_secret', GITHUB)).toEqual({});
    expect(githubAuthEnv('https://github.com/acme/web.git', 'ghp_secret', DOUBLE)).toEqual({});
    expect(githubAuthEnv('https://github.com/acme/web.git', undefined, GITHUB)).toEqual({});
  });
});
