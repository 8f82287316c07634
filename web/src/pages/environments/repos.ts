/**
 * Repository lines of the environment form: `owner/repo[@branch]` (GitHub),
 * any git URL with an optional `@branch`, or an absolute local path (sent as
 * a `file://` URL). As the CLI's `-r` reads them; what the API makes of a
 * line is the API's to say (a bad one is an error at `repos[i]`).
 */
export interface RepoSpecInput {
  url: string;
  branch?: string;
}

const SHORT = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/;
/** Exactly what the server stores for `owner/repo`, so a line round-trips unchanged. */
const GITHUB_URL = /^https:\/\/github\.com\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)\.git$/;

const SHORT_BRANCH = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)@(.+)$/;
/** A URL ending in `.git`, then `@branch` (the branch may hold slashes: `….git@feature/x`). */
const DOT_GIT_BRANCH = /^(.+\.git)@([^@]+)$/;

export function repoOfLine(line: string): RepoSpecInput {
  const shortBranch = SHORT_BRANCH.exec(line);
  if (shortBranch) return { url: `https://github.com/${shortBranch[1]}/${shortBranch[2]}.git`, branch: shortBranch[3] as string };
  const dotGit = DOT_GIT_BRANCH.exec(line);
  if (dotGit) return { url: dotGit[1] as string, branch: dotGit[2] as string };
  const at = line.lastIndexOf('@');
  // user@host:path has its @ before the first colon; a branch suffix comes after the last slash.
  const hasBranch = at > line.lastIndexOf('/') && at > line.indexOf(':');
  const target = hasBranch ? line.slice(0, at) : line;
  const branch = hasBranch ? line.slice(at + 1) : '';
  const short = SHORT.exec(target);
  const url = short ? `https://github.com/${short[1]}/${short[2]}.git` : target.startsWith('/') ? `file://${target}` : target;
  return { url, ...(branch ? { branch } : {}) };
}

/** A stored repository as a form line (and as the list shows it): `owner/repo` for GitHub. */
export function repoLine(repo: { url: string; branch?: string | undefined }): string {
  const m = GITHUB_URL.exec(repo.url);
  const name = m ? `${m[1]}/${m[2]}` : repo.url;
  return repo.branch ? `${name}@${repo.branch}` : name;
}
