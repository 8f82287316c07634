import { Octokit } from '@octokit/rest';
import type { DevcontainerSource } from '../../api/environments.js';
import { OzError } from '../../core/errors.js';

/** How long a read of GitHub may take before the request is answered 503. */
const GITHUB_TIMEOUT_MS = 15_000;
/** Larger files the contents API does not inline; no devcontainer.json is near this. */
const MAX_FILE_BYTES = 1024 * 1024;

export interface GithubFileOptions {
  /** GitHub's REST API (`OZ_GITHUB_API_URL`). */
  apiUrl: string;
  /** The team's `github-token` secret; anonymous without one. */
  token?: string | undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The text of one file of a GitHub repository (its default branch), through
 * the contents API. A missing file (or repository, or one the token cannot
 * read) is a 400 naming the path and the repository; GitHub unreachable,
 * failing or rate-limiting is a retryable 503.
 */
export async function readGithubFile(source: DevcontainerSource, options: GithubFileOptions): Promise<string> {
  const where = `${source.path} in the GitHub repository ${source.owner}/${source.repo}`;
  const octokit = new Octokit({
    baseUrl: options.apiUrl.replace(/\/+$/, ''),
    ...(options.token ? { auth: options.token } : {}),
    userAgent: 'oz-server',
    // Octokit logs request failures itself; the caller answers them.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  let data: unknown;
  try {
    ({ data } = await octokit.rest.repos.getContent({ owner: source.owner, repo: source.repo, path: source.path, request: { signal: AbortSignal.timeout(GITHUB_TIMEOUT_MS) } }));
  } catch (error) {
    const status = statusOf(error);
    const token = options.token ? "the team's github-token secret" : 'anonymous access (the team has no github-token secret)';
    if (status === 404) {
      throw new OzError('invalid_request', `devcontainer: no file ${where} (or the repository does not exist, or ${token} cannot read it)`, { reason: 'devcontainer' });
    }
    if (status === 401) throw new OzError('invalid_request', `devcontainer: GitHub refused ${token} reading ${where} (401)`, { reason: 'devcontainer' });
    if (status === 403 || status === 429) {
      const message = error instanceof Error ? error.message : String(error);
      const limited = status === 429 || /rate limit/i.test(message);
      if (!limited) throw new OzError('invalid_request', `devcontainer: GitHub refused reading ${where} with ${token} (403: ${message})`, { reason: 'devcontainer' });
      throw new OzError('resource_unavailable', `devcontainer: GitHub's rate limit stops reading ${where} for now (${token}); try again later`, { reason: 'devcontainer' });
    }
    const why = status !== undefined ? `answered ${status}` : `is unreachable (${error instanceof Error ? error.message : String(error)})`;
    throw new OzError('resource_unavailable', `devcontainer: GitHub's API at ${options.apiUrl} ${why} reading ${where}`, { reason: 'devcontainer', cause: error });
  }
  if (Array.isArray(data))
    throw new OzError('invalid_request', `devcontainer: ${where} is a directory; name the file (owner/repo:path/to/devcontainer.json)`, { reason: 'devcontainer' });
  const file = data as { type?: unknown; encoding?: unknown; content?: unknown; size?: unknown };
  if (file.type !== 'file') throw new OzError('invalid_request', `devcontainer: ${where} is not a file (it is a ${String(file.type)})`, { reason: 'devcontainer' });
  if ((typeof file.size === 'number' && file.size > MAX_FILE_BYTES) || file.encoding !== 'base64' || typeof file.content !== 'string') {
    throw new OzError('invalid_request', `devcontainer: ${where} is larger than ${MAX_FILE_BYTES / 1024} KiB, too large for a devcontainer.json`, { reason: 'devcontainer' });
  }
  // An editor's byte order mark is no JSON.
  return Buffer.from(file.content, 'base64')
    .toString('utf8')
    .replace(/^\uFEFF/, '');
}
