import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectBackend } from '../../src/sandbox/direct/direct-backend.js';
import type { Sandbox } from '../../src/sandbox/sandbox-backend.js';
import { MirrorCache } from '../../src/worker/provisioning/mirror-cache.js';
import { gitUrl } from '../../src/worker/results/forge.js';
import { Publisher, type PublishInput } from '../../src/worker/results/publisher.js';
import { startForgeDouble, type ForgeDouble } from '../support/forge-double.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';

const TOKEN = `ghp_${randomBytes(8).toString('hex')}`;
const URL_ = 'https://github.com/acme/web.git';

/** A retried run (same id, same branch) publishes again: the branch is updated, the pull request reused. */
describe('publishing again', () => {
  let dir: string;
  let forge: ForgeDouble;
  let sandbox: Sandbox;
  let backend: DirectBackend;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-republish-'));
    mkdirSync(join(dir, 'forge', 'acme'), { recursive: true });
    makeBareRepo(join(dir, 'forge', 'acme'), 'web', { 'index.html': '<h1>Hello</h1>\n' });
    forge = await startForgeDouble({ token: TOKEN });
  });
  afterEach(async () => {
    await sandbox?.destroy();
    // Its fence watchdog lives as long as the backend.
    backend?.close();
    await forge.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens one pull request, however often the same run publishes', async () => {
    const settings = {
      branchPrefix: 'oz/',
      authorName: 'Oz',
      authorEmail: 'oz@localhost',
      githubUrl: 'https://github.com',
      githubGitUrl: `file://${join(dir, 'forge')}`,
      githubApiUrl: forge.apiUrl,
    };
    const mirrors = new MirrorCache(join(dir, 'cache'), [dir], (url) => gitUrl(url, settings));
    const mirror = await mirrors.ensure('team-1', URL_);
    const publisher = new Publisher(settings, mirrors, join(dir, 'cache'));
    backend = new DirectBackend(dir);
    sandbox = await backend.create({
      runId: 'run-1',
      network: 'off',
      limits: { pids: 64, memoryBytes: 1 << 28, diskBytes: 1 << 26 },
      mounts: [mirror],
      onLimit: () => {},
    });
    const env = { PATH: '/usr/bin:/bin', HOME: sandbox.workspacePath, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
    const sh = async (script: string): Promise<string> => {
      let out = '';
      const result = await sandbox.exec(['/bin/sh', '-c', script], { env, onOutput: (_s, c) => (out += c.toString()) });
      expect(result.exitCode, out).toBe(0);
      return out.trim();
    };
    await sh(`git clone -q ${mirror} web`);
    const base = await sh('git -C web rev-parse HEAD');
    const artifacts: unknown[] = [];
    const input = (summary: string): PublishInput => ({
      runId: 'run-1',
      title: 'Greet',
      summary,
      sandbox,
      env,
      repos: [{ url: URL_ }],
      dirs: ['web'],
      bases: [base],
      mirrors: [mirror],
      githubToken: TOKEN,
      redact: (t) => t,
      artifact: (type, data) => artifacts.push({ type, data }),
      signal: new AbortController().signal,
    });

    await sh('sed -i "s/Hello/Hello, Oz/" web/index.html');
    expect(await publisher.publish(input('first'))).toEqual([`Opened pull request ${forge.pulls[0]?.html_url} (branch oz/run-1).`]);
    await sh('sed -i "s/Oz/Oz again/" web/index.html');
    expect(await publisher.publish(input('second'))).toEqual([`Updated pull request ${forge.pulls[0]?.html_url} (branch oz/run-1).`]);

    expect(forge.pulls).toHaveLength(1);
    expect(forge.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(git(join(dir, 'forge', 'acme', 'web.git'), 'show', 'oz/run-1:index.html')).toBe('<h1>Hello, Oz again</h1>\n');
    expect(artifacts).toEqual([
      { type: 'PULL_REQUEST', data: { url: forge.pulls[0]?.html_url, branch: 'oz/run-1' } },
      { type: 'PULL_REQUEST', data: { url: forge.pulls[0]?.html_url, branch: 'oz/run-1' } },
    ]);
    expect(forge.failures).toEqual([]);
  });
});
