import { OzError } from '../core/errors.js';
import type { RepoSpec } from '../core/environment.js';

/** A repository's names a run may use for it in `config.branches`: its URL, `owner/name` and `name` (without `.git`). */
function namesOf(url: string): string[] {
  const path = url.replace(/\.git\/?$/, '').replace(/\/+$/, '');
  const parts = path.split(/[/:]/).filter((p) => p.length > 0);
  const name = parts[parts.length - 1] ?? path;
  const owner = parts[parts.length - 2];
  return [url, path, ...(owner ? [`${owner}/${name}`] : []), name];
}

/**
 * `config.branches` keyed by the environment's repository URLs: each key must
 * name exactly one of its repositories (by URL, owner/name or name).
 */
export function resolveBranches(branches: Record<string, string>, repos: readonly RepoSpec[] | null): Record<string, string> {
  if (!repos) throw new OzError('invalid_request', 'config.branches: needs config.environment_id (the repositories are the environment’s)', { reason: 'config.branches' });
  const resolved: Record<string, string> = {};
  for (const [key, ref] of Object.entries(branches)) {
    const matches = repos.filter((repo) => namesOf(repo.url).includes(key));
    if (matches.length !== 1) {
      const allowed = repos.map((repo) => repo.url).join(', ') || 'none: the environment has no repositories';
      const why = matches.length === 0 ? 'is not a repository of the environment' : 'names more than one repository of the environment (use its URL)';
      throw new OzError('invalid_request', `config.branches: ${key} ${why}; its repositories are ${allowed}`, { reason: 'config.branches' });
    }
    resolved[(matches[0] as RepoSpec).url] = ref;
  }
  return resolved;
}

/** A 40- or 64-digit hex string names a commit; anything else a branch. */
export function isCommitId(ref: string): boolean {
  return /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(ref);
}
