import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { startHttpGit, type HttpServer } from '../worker/git-servers.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

/** In front of a git HTTP server: fetches pass, pushes (receive-pack) are held unanswered. */
function pushHoldingProxy(upstreamPort: number): Promise<{ server: Server; port: number; pushes: () => number }> {
  let pushes = 0;
  const server = createServer((req, res) => {
    if ((req.url ?? '').includes('git-receive-pack')) {
      pushes += 1;
      return; // held: the worker's push hangs here, as if the remote were slow
    }
    const out = request({ host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(out);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, pushes: () => pushes })));
}

describe('what a run published is on its record', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let git: HttpServer;
  let proxy: Awaited<ReturnType<typeof pushHoldingProxy>>;

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-publish-record-'));
    chmodSync(fixtures, 0o755);
    makeBareRepo(fixtures, 'app', { 'README.md': '# app\n' });
    git = await startHttpGit(fixtures);
    proxy = await pushHoldingProxy(git.port);
    server = await startOzServer('sqlite', { env: { OZ_GIT_ALLOWED_HOSTS: '127.0.0.1', OZ_KILL_GRACE_MS: '500' } });
  });
  afterAll(async () => {
    await server?.stop();
    proxy?.server.closeAllConnections();
    await new Promise((resolve) => proxy?.server.close(resolve));
    await git?.stop();
    rmSync(fixtures, { recursive: true, force: true });
  });

  it('the branch is recorded before it is pushed, so a worker lost during the push leaves it named', async () => {
    const env = await api(server, 'POST', '/api/v1/agent/environments', {
      key: server.adminKey,
      body: { name: `env-${randomBytes(3).toString('hex')}`, repos: [{ url: `http://127.0.0.1:${proxy.port}/app.git` }] },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    const created = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: 'echo changed >> README.md', config: { harness: { type: 'command' }, environment_id: (env.body as { uid: string }).uid } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const id = (created.body as { run_id: string }).run_id;
    await until('the push to reach the remote', () => proxy.pushes() > 0, 60_000);
    // The push is in flight (and may never come back): the run already names its branch.
    const during = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
    expect(during.branches).toEqual([{ branch: `oz/${id}`, repository: `http://127.0.0.1:${proxy.port}/app.git`, created_at: expect.any(String) }]);
    expect((await api(server, 'POST', `/api/v1/agent/runs/${id}/cancel`, { key: server.adminKey })).status).toBe(200);
    const ended = await until(`run ${id} to end`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    expect(ended.state).toBe('CANCELLED');
    expect(ended.artifacts).toEqual(during.artifacts);
  });
});
