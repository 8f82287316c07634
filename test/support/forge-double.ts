/**
 * A forge double for the GitHub REST calls Oz makes: the publisher's (get a
 * repository, list a branch's open pull requests, open one) and the server's
 * (a file's contents, for devcontainer.json). Pull requests live in memory;
 * a wrong token is a 401; a second open pull request for one head is a 422 as
 * on GitHub; files are the `files` option's, readable without a token in
 * `publicRepos` only (a private repository is a 404 without one, as on
 * GitHub); any other request is a 404 recorded in `failures`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PullRequest {
  number: number;
  owner: string;
  repo: string;
  title: string;
  body: string;
  head: string;
  base: string;
  html_url: string;
  state: 'open' | 'closed';
}

export interface ForgeDouble {
  apiUrl: string;
  pulls: PullRequest[];
  requests: { method: string; path: string; authorization: string | undefined }[];
  failures: string[];
  close(): Promise<void>;
}

export interface ForgeDoubleOptions {
  token: string;
  defaultBranch?: string;
  /** Repository files by `owner/repo`, then path: what `GET /repos/{owner}/{repo}/contents/{path}` serves. */
  files?: Record<string, Record<string, string>>;
  /** `owner/repo` of the repositories anyone may read (contents only). */
  publicRepos?: string[];
}

export async function startForgeDouble(options: ForgeDoubleOptions): Promise<ForgeDouble> {
  const pulls: PullRequest[] = [];
  const requests: ForgeDouble['requests'] = [];
  const failures: string[] = [];
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const present = (pr: PullRequest) => ({
    number: pr.number,
    html_url: pr.html_url,
    state: pr.state,
    title: pr.title,
    body: pr.body,
    head: { ref: pr.head, label: `${pr.owner}:${pr.head}` },
    base: { ref: pr.base },
  });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://forge');
      requests.push({ method: req.method ?? '', path: url.pathname + url.search, authorization: req.headers.authorization });
      const authorized = req.headers.authorization === `token ${options.token}` || req.headers.authorization === `Bearer ${options.token}`;
      const contents = /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/.exec(url.pathname);
      if (contents && req.method === 'GET' && (authorized || req.headers.authorization === undefined)) {
        const [, owner = '', repo = '', encoded = ''] = contents;
        const full = `${owner}/${repo}`;
        if (!authorized && !(options.publicRepos ?? []).includes(full)) return send(res, 404, { message: 'Not Found' });
        const files = options.files?.[full] ?? {};
        const path = decodeURIComponent(encoded);
        const text = files[path];
        if (text !== undefined) {
          const content = Buffer.from(text).toString('base64');
          return send(res, 200, { type: 'file', encoding: 'base64', size: Buffer.byteLength(text), name: path.split('/').pop(), path, content });
        }
        const inside = Object.keys(files).filter((f) => f.startsWith(`${path}/`));
        if (inside.length > 0)
          return send(
            res,
            200,
            inside.map((f) => ({ type: 'file', name: f.split('/').pop(), path: f })),
          );
        return send(res, 404, { message: 'Not Found' });
      }
      if (!authorized) {
        return send(res, 401, { message: 'Bad credentials' });
      }
      const repoPath = /^\/repos\/([^/]+)\/([^/]+)(\/pulls)?$/.exec(url.pathname);
      if (!repoPath) {
        failures.push(`unexpected ${req.method} ${url.pathname}`);
        return send(res, 404, { message: 'Not Found' });
      }
      const [, owner = '', repo = '', isPulls] = repoPath;
      if (!isPulls && req.method === 'GET') return send(res, 200, { name: repo, full_name: `${owner}/${repo}`, default_branch: options.defaultBranch ?? 'main' });
      if (isPulls && req.method === 'GET') {
        const head = url.searchParams.get('head');
        const state = url.searchParams.get('state') ?? 'open';
        const found = pulls.filter((pr) => pr.owner === owner && pr.repo === repo && (!head || `${pr.owner}:${pr.head}` === head) && (state === 'all' || pr.state === state));
        return send(res, 200, found.map(present));
      }
      if (isPulls && req.method === 'POST') {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, string>;
        if (!body.title || !body.head || !body.base) return send(res, 422, { message: 'Validation Failed: title, head and base are required' });
        if (pulls.some((pr) => pr.owner === owner && pr.repo === repo && pr.head === body.head && pr.state === 'open')) {
          return send(res, 422, { message: `Validation Failed: A pull request already exists for ${owner}:${body.head}.` });
        }
        const number = pulls.length + 1;
        const pr: PullRequest = {
          number,
          owner,
          repo,
          title: body.title,
          body: body.body ?? '',
          head: body.head,
          base: body.base,
          html_url: `https://github.example/${owner}/${repo}/pull/${number}`,
          state: 'open',
        };
        pulls.push(pr);
        return send(res, 201, present(pr));
      }
      failures.push(`unexpected ${req.method} ${url.pathname}`);
      return send(res, 404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}`,
    pulls,
    requests,
    failures,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
