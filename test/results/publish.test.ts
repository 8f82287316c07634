import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startForgeDouble, type ForgeDouble } from '../support/forge-double.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const TOKEN = `ghp_${randomBytes(12).toString('hex')}`;

describe('publishing a run’s changes', () => {
  let server: OzServerHandle;
  let fixtures: string;
  let forge: ForgeDouble;
  let localUrl: string;
  let localBare: string;
  let githubBare: string;
  let markers: string;

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-publish-'));
    chmodSync(fixtures, 0o755);
    markers = join(fixtures, 'markers');
    mkdirSync(markers, { mode: 0o777 });
    chmodSync(markers, 0o777);
    localUrl = makeBareRepo(fixtures, 'app', { 'greet.sh': 'echo "Hello"\n', 'README.md': '# app\n' });
    localBare = join(fixtures, 'app.git');
    mkdirSync(join(fixtures, 'forge', 'acme'), { recursive: true });
    makeBareRepo(join(fixtures, 'forge', 'acme'), 'web', { 'index.html': '<h1>Hello</h1>\n' });
    githubBare = join(fixtures, 'forge', 'acme', 'web.git');
    forge = await startForgeDouble({ token: TOKEN });
    server = await startOzServer('sqlite', {
      env: {
        OZ_FILE_REPO_ROOTS: fixtures,
        OZ_TEAM_MAX_CONCURRENT_RUNS: '10',
        OZ_GITHUB_GIT_URL: `file://${join(fixtures, 'forge')}`,
        OZ_GITHUB_API_URL: forge.apiUrl,
        OZ_GIT_AUTHOR_NAME: 'Oz Test',
        OZ_GIT_AUTHOR_EMAIL: 'oz-test@example.test',
      },
    });
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await forge?.close();
      rmSync(fixtures, { recursive: true, force: true });
    }
  });

  const environment = async (body: Json): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: `env-${randomBytes(3).toString('hex')}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const run = async (script: string, environmentId: string, title = 'Say hello to Oz'): Promise<Json> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: script, title, config: { harness: { type: 'command' }, environment_id: environmentId } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    return until(`run ${id}`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
  };
  const branches = (bare: string): string[] => git(bare, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/').trim().split('\n').filter(Boolean);

  it('a run that edits a file ends with its branch pushed, holding exactly that edit, and the branch and summary on the run', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    const result = await run('sed -i "s/Hello/Hello, Oz/" greet.sh', envId);
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    const id = String(result.run_id);
    const branch = `oz/${id}`;
    expect(branches(localBare)).toContain(branch);
    expect(git(localBare, 'diff', '--stat', 'main', branch).trim()).toBe('greet.sh | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)');
    expect(git(localBare, 'show', `${branch}:greet.sh`)).toBe('echo "Hello, Oz"\n');
    expect(git(localBare, 'rev-parse', `${branch}~1`)).toBe(git(localBare, 'rev-parse', 'main'));
    expect(git(localBare, 'log', '-1', '--format=%an <%ae>|%s', branch).trim()).toBe('Oz Test <oz-test@example.test>|Say hello to Oz');
    // The spec's artifacts hold only its own types (a strict client decodes them); the branch is our extension field.
    expect(result.artifacts).toEqual([]);
    expect(result.branches).toEqual([{ branch, repository: localUrl, created_at: expect.any(String) }]);
    expect(String((result.status_message as Json).message)).toContain(`Pushed branch ${branch} to ${localUrl}.`);
    // The artifact filter of the run list finds it.
    const list = await api(server, 'GET', '/api/v1/agent/runs?artifact_type=BRANCH', { key: server.adminKey });
    expect((list.body as { runs: Json[] }).runs.map((r) => r.run_id)).toContain(id);
  });

  it('a run that changes nothing pushes no branch, and its summary says so', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    const before = branches(localBare);
    const result = await run('cat README.md', envId);
    expect(result.state).toBe('SUCCEEDED');
    expect(branches(localBare)).toEqual(before);
    expect(result.artifacts).toEqual([]);
    expect(String((result.status_message as Json).message)).toContain('No changes in app: nothing was published.');
  });

  it('what a run leaves outside the repository is named in the status: nothing of it is published', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    const result = await run('sed -i "s/Hello/Hello, outside/" greet.sh && echo draft > ../notes.txt && mkdir ../out && touch ../out/a ../.hidden', envId);
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    const branch = `oz/${String(result.run_id)}`;
    expect(git(localBare, 'diff', '--name-only', 'main', branch).trim()).toBe('greet.sh');
    expect((result.status_message as Json).message).toBe(
      `The command exited with code 0.\nPushed branch ${branch} to ${localUrl}.\nChanges outside the repository were not published: notes.txt, out/.`,
    );

    // Nothing in the repository, everything outside it: the run says both.
    const lost = await run('echo lost > ../lost.txt', envId);
    expect(lost.state).toBe('SUCCEEDED');
    expect((lost.status_message as Json).message).toBe(
      'The command exited with code 0.\nNo changes in app: nothing was published.\nChanges outside the repository were not published: lost.txt.',
    );
  });

  it('with two repositories, the command starts in the workspace and each repository publishes its own changes', async () => {
    const otherUrl = makeBareRepo(fixtures, 'lib', { 'lib.sh': 'echo lib\n' });
    const envId = await environment({ repos: [{ url: localUrl }, { url: otherUrl }] });
    const result = await run('[ "$(pwd)" = /workspace ] && echo more >> app/README.md && echo more >> lib/lib.sh', envId);
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    const branch = `oz/${String(result.run_id)}`;
    expect(git(localBare, 'diff', '--name-only', 'main', branch).trim()).toBe('README.md');
    expect(git(join(fixtures, 'lib.git'), 'diff', '--name-only', 'main', branch).trim()).toBe('lib.sh');
    expect((result.status_message as Json).message).toBe(`The command exited with code 0.\nPushed branch ${branch} to ${localUrl}.\nPushed branch ${branch} to ${otherUrl}.`);
  });

  it('a hostile .git (clean filter, fsmonitor, hooks) does not run on the host: publishing succeeds and no marker appears', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    const marker = (name: string) => `touch ${markers}/${name} 2>/dev/null || true`;
    const script = [
      `git config filter.evil.clean '${marker('clean-filter')}; cat'`,
      `git config filter.evil.smudge '${marker('smudge-filter')}; cat'`,
      'echo "* filter=evil" > .gitattributes',
      `git config core.fsmonitor '${marker('fsmonitor')}'`,
      `git config core.hooksPath .git/hooks`,
      ...['pre-push', 'post-commit', 'reference-transaction', 'post-checkout', 'pre-receive', 'post-update', 'fsmonitor-watchman'].map(
        (hook) => `printf '#!/bin/sh\\n${marker(`hook-${hook}`)}\\nexit 0\\n' > .git/hooks/${hook} && chmod +x .git/hooks/${hook}`,
      ),
      'sed -i "s/Hello/Hello, hostile/" greet.sh',
    ].join('\n');
    const result = await run(script, envId);
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    const branch = `oz/${String(result.run_id)}`;
    expect(git(localBare, 'show', `${branch}:greet.sh`)).toBe('echo "Hello, hostile"\n');
    expect(readdirSync(markers)).toEqual([]);
  });

  it('with a GitHub remote and the forge double: one pull request opened and recorded, its body the redacted summary', async () => {
    expect((await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'GH', type: 'github-token', value: TOKEN } })).status).toBe(201);
    const envId = await environment({ repos: [{ url: 'https://github.com/acme/web.git' }], secrets: ['GH'] });
    const result = await run(`sed -i "s/Hello/Hello, Oz/" index.html && echo "token is $GITHUB_TOKEN"`, envId, 'Greet Oz on the web');
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    const branch = `oz/${String(result.run_id)}`;
    expect(git(githubBare, 'show', `${branch}:index.html`)).toBe('<h1>Hello, Oz</h1>\n');
    expect(forge.failures).toEqual([]);
    expect(forge.pulls).toHaveLength(1);
    const pr = forge.pulls[0];
    expect(pr).toMatchObject({ owner: 'acme', repo: 'web', head: branch, base: 'main', title: 'Greet Oz on the web', state: 'open' });
    expect(pr?.body).not.toContain(TOKEN);
    // The branch is on the record before its push; the pull request after it.
    expect(result.branches).toEqual([{ branch, repository: expect.stringContaining('github'), created_at: expect.any(String) }]);
    expect(result.artifacts).toEqual([{ artifact_type: 'PULL_REQUEST', created_at: expect.any(String), data: { url: pr?.html_url, branch } }]);
    expect(String((result.status_message as Json).message)).toContain(`Opened pull request ${pr?.html_url} (branch ${branch}).`);
    // Every API call carried the team's token; none carried another.
    expect(new Set(forge.requests.map((r) => r.authorization))).toEqual(new Set([`token ${TOKEN}`]));
  });

  it('a rejected push is recorded on the run: FAILED publish_failed naming the branch', async () => {
    const envId = await environment({ repos: [{ url: localUrl }] });
    // The remote refuses every update of oz/* branches.
    git(localBare, 'config', 'receive.denyCurrentBranch', 'refuse');
    const hook = join(localBare, 'hooks', 'pre-receive');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(hook, '#!/bin/sh\necho "policy: no agent branches" >&2\nexit 1\n', { mode: 0o755 });
    try {
      const result = await run('echo more >> README.md', envId);
      expect(result.state).toBe('FAILED');
      expect(result.status_message).toMatchObject({ reason: 'publish_failed' });
      expect(String((result.status_message as Json).message)).toMatch(/The push of oz\/\S+ to .* was rejected: .*policy: no agent branches/);
    } finally {
      rmSync(hook);
    }
  });
});
