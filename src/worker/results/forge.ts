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
