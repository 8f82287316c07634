import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/sandbox-backend.js';
import { FetchError, MirrorCache, type MirrorCacheOptions } from '../../src/worker/provisioning/mirror-cache.js';
import { Publisher, PublishError } from '../../src/worker/results/publisher.js';
import { git, makeBareRepo } from '../support/git-fixtures.js';
import { ENV, freePort, type GitDaemon, type HttpServer, SETTINGS, startGitDaemon, startHttpGit, startRedirector } from './git-servers.js';

/**
 * Host-side git and repository URLs (issue 16 item 6, SSRF): a git daemon and
 * an HTTP git server on loopback stand for the services a worker's host can
 * reach. Without the operator's allowlist host-side git neither fetches from
 * them nor pushes to them, and says exactly what it says for a closed port;
 * with it, it works; it goes to the address it checked, never to what a
 * second resolution would give, and follows no redirect.
 */
const GENERIC = 'the host is not reachable or not allowed';

let dir: string;
let roots: string;
let cacheDir: string;
let warnings: { detail: unknown; message: string }[];
const stops: (() => Promise<void>)[] = [];

beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'oz-host-git-dest-')));
  roots = join(dir, 'repos');
  mkdirSync(roots);
  cacheDir = join(dir, 'cache');
  warnings = [];
  makeBareRepo(roots, 'app', { 'README.md': 'app\n' });
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  rmSync(dir, { recursive: true, force: true });
});

function cacheWith(options: MirrorCacheOptions = {}): MirrorCache {
  return new MirrorCache(cacheDir, [], undefined, { logger: { warn: (detail: unknown, message: string) => warnings.push({ detail, message }) } as never, ...options });
}

async function daemon(host = '127.0.0.1'): Promise<GitDaemon> {
  const started = await startGitDaemon(roots, host);
  stops.push(() => started.stop());
  return started;
}

async function http(start: () => Promise<HttpServer>): Promise<HttpServer> {
  const started = await start();
  stops.push(() => started.stop());
  return started;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

/** A bundle of `refs/heads/oz/run-1`: one change on top of `base`, made from a clone of the origin. */
function changeBundle(base: string): Buffer {
  const work = join(dir, 'work');
  execFileSync('git', ['clone', '--quiet', join(roots, 'app.git'), work], { env: ENV });
  writeFileSync(join(work, 'README.md'), 'changed\n');
  execFileSync('git', ['commit', '--quiet', '-am', 'change'], { cwd: work, env: ENV });
  execFileSync('git', ['update-ref', 'refs/heads/oz/run-1', 'HEAD'], { cwd: work, env: ENV });
  execFileSync('git', ['bundle', 'create', join(dir, 'changes.bundle'), 'refs/heads/oz/run-1', `^${base}`], { cwd: work, env: ENV, stdio: 'ignore' });
  return readFileSync(join(dir, 'changes.bundle'));
}

function publish(cache: MirrorCache, url: string, mirror: string, base: string, bundle: Buffer): Promise<string[]> {
  const exec: Sandbox['exec'] = async (_argv, options) => {
    options.onOutput('stdout', bundle);
    return { exitCode: 0, signal: null };
  };
  return new Publisher(SETTINGS, cache, cacheDir).publish({
    runId: 'run-1',
    title: 'Change',
    summary: 'changed',
    sandbox: { exec } as unknown as Sandbox,
    env: {},
    repos: [{ url }],
    dirs: ['app'],
    bases: [base],
    mirrors: [mirror],
    redact: (text) => text,
    artifact: () => {},
    signal: new AbortController().signal,
  });
}

function branchOnOrigin(): string | null {
  try {
    return git(join(roots, 'app.git'), 'rev-parse', '--verify', '--quiet', 'refs/heads/oz/run-1').trim();
  } catch {
    return null;
  }
}

describe('host-side git destinations', () => {
  it('refuses a loopback git daemon without the allowlist, for the mirror fetch and the push, as it answers a closed port; works with it', async () => {
    const server = await daemon();
    const url = `git://127.0.0.1:${server.port}/app.git`;
    const refusing = cacheWith();

    const refused = await failure(refusing.ensure('team-a', url));
    expect(refused).toBeInstanceOf(FetchError);
    expect(refused.message).toBe(`could not fetch ${url}: ${GENERIC}`);
    // By name too (localhost resolves to loopback from /etc/hosts).
    expect((await failure(refusing.ensure('team-a', `git://localhost:${server.port}/app.git`))).message).toBe(`could not fetch git://localhost:${server.port}/app.git: ${GENERIC}`);
    expect(server.connections()).toBe(0);
    // The reason is in the worker's log, not in the message.
    expect(JSON.stringify(warnings)).toMatch(/127\.0\.0\.1, loopback, and not in OZ_GIT_ALLOWED_HOSTS/);

    // An allowed host with nothing listening: the same line, so the user cannot tell a closed port from a refused one.
    const closed = await freePort();
    const open = cacheWith({ allowedHosts: ['127.0.0.1'] });
    for (const scheme of ['git', 'http']) {
      const closedUrl = `${scheme}://127.0.0.1:${closed}/app.git`;
      const unreachable = await failure(open.ensure('team-a', closedUrl));
      expect(unreachable).toBeInstanceOf(FetchError);
      expect(unreachable.message.replace(closedUrl, 'REPO')).toBe(refused.message.replace(url, 'REPO'));
    }

    // Allowed (this host and port only): fetched.
    const allowed = cacheWith({ allowedHosts: [`127.0.0.1:${server.port}`] });
    const mirror = await allowed.ensure('team-a', url);
    const base = git(mirror, 'rev-parse', 'main').trim();
    expect(base).toBe(git(join(roots, 'app.git'), 'rev-parse', 'main').trim());
    expect(server.connections()).toBe(1);
    // Fetched again (the existing mirror's path).
    await allowed.ensure('team-a', url);
    expect(server.connections()).toBe(2);

    // The push: refused without the allowlist, before any connection; done with it.
    const bundle = changeBundle(base);
    const pushRefused = await failure(publish(refusing, url, mirror, base, bundle));
    expect(pushRefused).toBeInstanceOf(PublishError);
    expect(pushRefused.message).toBe(`The push of oz/run-1 failed: could not push to ${url}: ${GENERIC}`);
    expect(server.connections()).toBe(2);
    expect(branchOnOrigin()).toBeNull();
    expect(await publish(allowed, url, mirror, base, bundle)).toEqual([`Pushed branch oz/run-1 to ${url}.`]);
    expect(git(join(roots, 'app.git'), 'show', 'oz/run-1:README.md')).toBe('changed\n');
  });

  it('pins git to the address it checked: a name git would resolve elsewhere goes where the check said', async () => {
    // The servers listen on 127.0.0.2 only; git resolving "localhost" itself
    // would get 127.0.0.1 (/etc/hosts) and find nothing there.
    const server = await daemon('127.0.0.2');
    const web = await http(() => startHttpGit(roots, '127.0.0.2'));
    const cache = cacheWith({ allowedHosts: ['127.0.0.2'], lookup: async (host) => (host === 'localhost' ? ['127.0.0.2'] : []) });

    const gitUrl = `git://localhost:${server.port}/app.git`;
    const mirror = await cache.ensure('team-a', gitUrl);
    expect(git(mirror, 'rev-parse', 'main').trim()).toBe(git(join(roots, 'app.git'), 'rev-parse', 'main').trim());
    // The mirror keeps the URL as given, and its next fetch is pinned the same way.
    expect(git(mirror, 'config', 'remote.origin.url').trim()).toBe(gitUrl);
    await cache.ensure('team-a', gitUrl);
    expect(server.connections()).toBe(2);

    const httpUrl = `http://localhost:${web.port}/app.git`;
    await cache.ensure('team-b', httpUrl);
    await cache.ensure('team-b', httpUrl);
    expect(web.requests.filter((r) => r.includes('info/refs')).length).toBe(2);

    // The push is pinned too.
    const base = git(mirror, 'rev-parse', 'main').trim();
    expect(await publish(cache, gitUrl, mirror, base, changeBundle(base))).toEqual([`Pushed branch oz/run-1 to ${gitUrl}.`]);
    expect(branchOnOrigin()).not.toBeNull();
  });

  it('does not follow a redirect from an allowed HTTP git server to a port that is not allowed', async () => {
    const target = await http(() => startHttpGit(roots));
    const redirector = await http(() => startRedirector(target.url));
    const cache = cacheWith({ allowedHosts: [`127.0.0.1:${redirector.port}`] });
    const url = `${redirector.url}/app.git`;
    const error = await failure(cache.ensure('team-a', url));
    expect(error).toBeInstanceOf(FetchError);
    expect(error.message).toBe(`could not fetch ${url}: it answers with a redirect, which this worker does not follow; give the repository's final URL`);
    expect(redirector.requests.length).toBeGreaterThan(0);
    expect(target.requests).toEqual([]);
    // The target is a working git server: allowed and named directly, it is fetched.
    await cacheWith({ allowedHosts: [`127.0.0.1:${target.port}`] }).ensure('team-a', `${target.url}/app.git`);
    expect(target.requests.length).toBeGreaterThan(0);
  });
});
