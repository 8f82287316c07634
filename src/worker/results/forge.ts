import type { ResultsSettings } from '../../core/config.js';

/** GitHub as the worker sees it: where its git and REST API answer (GitHub Enterprise, the test suite's forge double). */
export type ForgeSettings = Pick<ResultsSettings, 'githubUrl' | 'githubGitUrl' | 'githubApiUrl'>;

/** `owner` and `repo` of a GitHub repository URL, or null for any other remote. */
export function githubRepo(url: string, forge: ForgeSettings): { owner: string; repo: string } | null {
  const base = forge.githubUrl.replace(/\/+$/, '');
  if (!url.startsWith(`${base}/`)) return null;
  const match = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(url.slice(base.length + 1));
  return match ? { owner: match[1] as string, repo: match[2] as string } : null;
}

/** The URL git uses for a repository: GitHub's rewritten to `githubGitUrl`, others as given. */
export function gitUrl(url: string, forge: ForgeSettings): string {
  const github = githubRepo(url, forge);
  return github ? `${forge.githubGitUrl.replace(/\/+$/, '')}/${github.owner}/${github.repo}.git` : url;
}

/**
 * The team's GitHub token for host-side git, as an HTTP header in git's
 * environment (never on a command line, never in a stored config): only for
 * GitHub repositories reached over https, nothing otherwise.
 */
export function githubAuthEnv(url: string, token: string | undefined, forge: ForgeSettings): Record<string, string> {
  if (!token || !githubRepo(url, forge) || !gitUrl(url, forge).startsWith('https://')) return {};
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` };
}

/**
 * The destination of the GitHub git URL (`OZ_GITHUB_GIT_URL`) as an allowed
 * `host:port` for host-side git: the operator chose it (GitHub Enterprise on
 * the LAN, a test forge on loopback). Null when it is not a network URL.
 */
export function forgeGitHost(forge: ForgeSettings): string | null {
  let url: URL;
  try {
    url = new URL(forge.githubGitUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}
