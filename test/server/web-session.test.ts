import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EVENT_STREAMS } from '../../src/core/config.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';
import { startInProcessApp, type InProcessApp } from '../support/in-process-app.js';

interface Person {
  key: string;
  keyId: string;
  teamId: string;
}

/** The session cookie a sign-in set, as a browser would send it back. */
function cookieOf(setCookie: string | string[] | undefined): string {
  const header = Array.isArray(setCookie) ? setCookie[0] : setCookie;
  const pair = header?.split(';')[0];
  if (!pair?.startsWith('oz_session=')) throw new Error(`no session cookie in ${String(header)}`);
  return pair;
}

describe('dashboard sign-in: sessions, CSRF, login links', () => {
  let server: InProcessApp;
  let alice: Person;
  let bob: Person;
  let webRoot: string;

  async function person(team: string, expiresAt: number | null = null): Promise<Person> {
    const now = Date.now();
    const t = (await server.store.getTeamByName(team)) ?? (await server.store.createTeam({ name: team, maxConcurrentRuns: 5 }, now));
    const user = await server.store.createUser({ teamId: t.id, email: `${Math.random().toString(36).slice(2)}@${team}.test`, displayName: null, role: 'member' }, now);
    const minted = mintCredential(API_KEY_PREFIX);
    const key = await server.store.createApiKey({ teamId: t.id, userId: user.id, name: 'k', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt }, now);
    return { key: minted.secret, keyId: key.id, teamId: t.id };
  }

  async function signIn(p: Person): Promise<{ cookie: string; csrf: string }> {
    const response = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload: { api_key: p.key } });
    expect(response.statusCode).toBe(200);
    return { cookie: cookieOf(response.headers['set-cookie']), csrf: response.json<{ csrf_token: string }>().csrf_token };
  }

  beforeAll(async () => {
    webRoot = mkdtempSync(join(tmpdir(), 'oz-web-'));
    mkdirSync(join(webRoot, 'assets'));
    writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>Oz</title><div id="root"></div>');
    writeFileSync(join(webRoot, 'assets', 'index-abc.js'), 'console.log(1)');
    server = await startInProcessApp({ webRoot });
    alice = await person('alpha');
    bob = await person('beta');
  });
  afterAll(async () => {
    await server?.close();
    rmSync(webRoot, { recursive: true, force: true });
  });

  it('an API key becomes an HttpOnly, SameSite=Strict cookie; the key is in no answer', async () => {
    const response = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload: { api_key: alice.key } });
    expect(response.statusCode).toBe(200);
    const header = String(response.headers['set-cookie']);
    expect(header).toMatch(/^oz_session=ozs_[\w-]{40,};/);
    expect(header).toMatch(/HttpOnly/);
    expect(header).toMatch(/SameSite=Strict/);
    expect(header).toMatch(/Path=\//);
    expect(response.body).not.toContain(alice.key);
    expect(response.json()).toMatchObject({ csrf_token: expect.any(String), user: { team_uid: alice.teamId }, team: { name: 'alpha' } });
  });

  it('refuses a wrong key, naming the field, and a body with neither or both credentials', async () => {
    const wrong = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload: { api_key: 'oz_not-a-key' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ reason: 'api_key' });
    expect(wrong.headers['set-cookie']).toBeUndefined();
    for (const payload of [{}, { api_key: alice.key, login_token: 'x' }, { api_key: alice.key, extra: 1 }]) {
      const bad = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload });
      expect(bad.statusCode).toBe(400);
    }
  });

  it('the cookie reads freely; a change needs the CSRF token, which only the session’s own page can read', async () => {
    const { cookie, csrf } = await signIn(alice);
    const me = await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ team: { name: 'alpha' } });
    const session = await server.app.inject({ method: 'GET', url: '/api/v1/web/session', headers: { cookie } });
    expect(session.json()).toMatchObject({ csrf_token: csrf });

    const body = { prompt: 'hello', config: { harness: { type: 'command', command: 'true' } } };
    const forged = await server.app.inject({ method: 'POST', url: '/api/v1/agent/runs', headers: { cookie }, payload: body });
    expect(forged.statusCode).toBe(403);
    expect(forged.json()).toMatchObject({ reason: 'csrf_token' });
    const wrongToken = await server.app.inject({ method: 'POST', url: '/api/v1/agent/runs', headers: { cookie, 'x-oz-csrf': `${csrf}x` }, payload: body });
    expect(wrongToken.statusCode).toBe(403);
    const otherSession = await signIn(alice);
    const crossed = await server.app.inject({ method: 'POST', url: '/api/v1/agent/runs', headers: { cookie, 'x-oz-csrf': otherSession.csrf }, payload: body });
    expect(crossed.statusCode).toBe(403);
    const made = await server.app.inject({ method: 'POST', url: '/api/v1/agent/runs', headers: { cookie, 'x-oz-csrf': csrf }, payload: body });
    expect(made.statusCode).toBe(200);
    const run = await server.app.inject({ method: 'GET', url: `/api/v1/agent/runs/${made.json<{ run_id: string }>().run_id}`, headers: { cookie } });
    expect(run.json()).toMatchObject({ source: 'WEB_APP' });
    // Nothing half-written: the forged requests made no run.
    const list = await server.app.inject({ method: 'GET', url: '/api/v1/agent/runs', headers: { cookie } });
    expect(list.json<{ runs: unknown[] }>().runs).toHaveLength(1);
  });

  it('another team’s run is a 404 through a session as through a key', async () => {
    const mine = await signIn(alice);
    const made = await server.app.inject({
      method: 'POST',
      url: '/api/v1/agent/runs',
      headers: { cookie: mine.cookie, 'x-oz-csrf': mine.csrf },
      payload: { prompt: 'private', config: { harness: { type: 'command', command: 'true' } } },
    });
    const runId = made.json<{ run_id: string }>().run_id;
    const theirs = await signIn(bob);
    const seen = await server.app.inject({ method: 'GET', url: `/api/v1/agent/runs/${runId}`, headers: { cookie: theirs.cookie } });
    expect(seen.statusCode).toBe(404);
    const events = await server.app.inject({ method: 'GET', url: `/api/v1/agent/runs/${runId}/diff`, headers: { cookie: theirs.cookie } });
    expect(events.statusCode).toBe(404);
  });

  it('sign-out ends the session on the server: the old cookie is refused afterwards', async () => {
    const { cookie, csrf } = await signIn(alice);
    const withoutToken = await server.app.inject({ method: 'DELETE', url: '/api/v1/web/session', headers: { cookie } });
    expect(withoutToken.statusCode).toBe(403);
    const out = await server.app.inject({ method: 'DELETE', url: '/api/v1/web/session', headers: { cookie, 'x-oz-csrf': csrf } });
    expect(out.statusCode).toBe(200);
    expect(out.json()).toEqual({ signed_out: true });
    expect(String(out.headers['set-cookie'])).toMatch(/oz_session=;.*Expires=Thu, 01 Jan 1970/);
    const after = await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    expect(after.statusCode).toBe(401);
    expect(after.json()).toMatchObject({ reason: 'session' });
  });

  it('a session ends with its API key; a bearer key wins over a cookie', async () => {
    const short = await person('alpha');
    const { cookie } = await signIn(short);
    await server.store.expireApiKey(short.teamId, short.keyId, Date.now());
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(401);
    const live = await signIn(alice);
    const me = await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie: live.cookie, authorization: `Bearer ${bob.key}` } });
    expect(me.json()).toMatchObject({ team: { name: 'beta' } });
    // A key needs no CSRF token (a browser never adds an Authorization header on its own).
    const viaKey = await server.app.inject({
      method: 'POST',
      url: '/api/v1/agent/runs',
      headers: { cookie: live.cookie, authorization: `Bearer ${bob.key}` },
      payload: { prompt: 'x', config: { harness: { type: 'command', command: 'true' } } },
    });
    expect(viaKey.statusCode).toBe(200);
  });

  it('oz open’s login link: one use, to the run’s page, as the key that asked; another team’s run is a 404', async () => {
    const made = await server.app.inject({
      method: 'POST',
      url: '/api/v1/agent/runs',
      headers: { authorization: `Bearer ${alice.key}` },
      payload: { prompt: 'linked', config: { harness: { type: 'command', command: 'true' } } },
    });
    const runId = made.json<{ run_id: string }>().run_id;
    const foreign = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links', headers: { authorization: `Bearer ${bob.key}` }, payload: { run_id: runId } });
    expect(foreign.statusCode).toBe(404);
    const noAuth = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links', payload: {} });
    expect(noAuth.statusCode).toBe(401);
    const link = await server.app.inject({
      method: 'POST',
      url: '/api/v1/web/login-links',
      headers: { authorization: `Bearer ${alice.key}`, host: 'oz.example.test:7420' },
      payload: { run_id: runId },
    });
    expect(link.statusCode).toBe(200);
    const { url, expires_at: expiresAt } = link.json<{ url: string; expires_at: string }>();
    expect(url).toMatch(/^http:\/\/oz\.example\.test:7420\/login#[\w-]{40,}$/);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(120_000);
    const token = url.split('#')[1] ?? '';
    const used = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload: { login_token: token } });
    expect(used.statusCode).toBe(200);
    expect(used.json()).toMatchObject({ path: `/runs/${runId}`, team: { name: 'alpha' } });
    const cookie = cookieOf(used.headers['set-cookie']);
    expect((await server.app.inject({ method: 'GET', url: `/api/v1/agent/runs/${runId}`, headers: { cookie } })).statusCode).toBe(200);
    const again = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload: { login_token: token } });
    expect(again.statusCode).toBe(401);
    expect(again.json()).toMatchObject({ reason: 'login_token' });
    const plain = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links', headers: { authorization: `Bearer ${alice.key}` } });
    expect(plain.statusCode).toBe(200);
  });

  it('a login link can be looked at without being used; a sign-in over a live session ends the old one', async () => {
    const link = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links', headers: { authorization: `Bearer ${bob.key}` }, payload: {} });
    const token = link.json<{ url: string }>().url.split('#')[1] ?? '';
    const peek = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links/peek', payload: { login_token: token } });
    expect(peek.statusCode).toBe(200);
    expect(peek.json()).toMatchObject({ team: { name: 'beta' }, path: '/runs' });
    expect(peek.headers['set-cookie']).toBeUndefined();
    const bad = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links/peek', payload: { login_token: 'nope' } });
    expect(bad.statusCode).toBe(401);
    // Alice is signed in; Bob's link, used in her browser, replaces her session on the server too.
    const hers = await signIn(alice);
    const used = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', headers: { cookie: hers.cookie }, payload: { login_token: token } });
    expect(used.statusCode).toBe(200);
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie: hers.cookie } })).statusCode).toBe(401);
    const bobs = cookieOf(used.headers['set-cookie']);
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie: bobs } })).json()).toMatchObject({ team: { name: 'beta' } });
  });

  it('API answers are never cached', async () => {
    const me = await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${alice.key}` } });
    expect(me.headers['cache-control']).toBe('no-store');
  });

  it('serves the dashboard at / and its routes, with a strict Content-Security-Policy; the API and assets keep their 404s', async () => {
    const root = await server.app.inject({ method: 'GET', url: '/' });
    expect(root.statusCode).toBe(200);
    expect(root.headers['content-type']).toMatch(/text\/html/);
    const csp = String(root.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(root.headers['x-content-type-options']).toBe('nosniff');
    expect(root.headers['referrer-policy']).toBe('no-referrer');
    const page = await server.app.inject({ method: 'GET', url: '/runs/some-run?x=1', headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<div id="root">');
    const asset = await server.app.inject({ method: 'GET', url: '/assets/index-abc.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
    const missingAsset = await server.app.inject({ method: 'GET', url: '/assets/gone.js', headers: { accept: 'text/html' } });
    expect(missingAsset.statusCode).toBe(404);
    expect(missingAsset.headers['content-type']).toMatch(/problem\+json/);
    const api = await server.app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers: { accept: 'text/html' } });
    expect(api.statusCode).toBe(404);
    expect(api.headers['content-type']).toMatch(/problem\+json/);
    const apiCsp = await server.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${alice.key}` } });
    expect(apiCsp.headers['content-security-policy']).toBe(csp);
  });
});

describe('dashboard not built', () => {
  it('/ says how to build it', async () => {
    const server = await startInProcessApp({ webRoot: join(tmpdir(), 'oz-no-such-web-root') });
    try {
      const root = await server.app.inject({ method: 'GET', url: '/' });
      expect(root.statusCode).toBe(404);
      expect(root.json()).toMatchObject({ detail: expect.stringContaining('npm run build') });
    } finally {
      await server.close();
    }
  });
});

describe('a dashboard session’s event stream', () => {
  it('stays open across key re-checks while the session lives, and closes once it is signed out', async () => {
    const server = await startInProcessApp({ eventStreams: { ...DEFAULT_EVENT_STREAMS, heartbeatMs: 100 } });
    try {
      const now = Date.now();
      const team = await server.store.createTeam({ name: 'streams', maxConcurrentRuns: 5 }, now);
      const user = await server.store.createUser({ teamId: team.id, email: 's@streams.test', displayName: null, role: 'member' }, now);
      const minted = mintCredential(API_KEY_PREFIX);
      await server.store.createApiKey({ teamId: team.id, userId: user.id, name: 'k', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
      const signIn = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', payload: { api_key: minted.secret } });
      const cookie = cookieOf(signIn.headers['set-cookie']);
      const csrf = signIn.json<{ csrf_token: string }>().csrf_token;
      const made = await server.app.inject({
        method: 'POST',
        url: '/api/v1/agent/runs',
        headers: { cookie, 'x-oz-csrf': csrf },
        payload: { prompt: 'waits', config: { harness: { type: 'command', command: 'true' } } },
      });
      const runId = made.json<{ run_id: string }>().run_id;
      const response = await fetch(`${server.url}/api/v1/agent/runs/${runId}/events`, { headers: { cookie } });
      expect(response.status).toBe(200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      let closed = false;
      const reading = (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          text += decoder.decode(value);
        }
        closed = true;
      })();
      // Many re-checks (every 100 ms): the stream is still open.
      await new Promise((r) => setTimeout(r, 800));
      expect(closed).toBe(false);
      expect(text).not.toContain('no longer valid');
      await server.app.inject({ method: 'DELETE', url: '/api/v1/web/session', headers: { cookie, 'x-oz-csrf': csrf } });
      await reading;
      expect(text).toContain(': the API key is no longer valid');
    } finally {
      await server.close();
    }
  });
});

describe('behind a TLS proxy (OZ_TRUST_PROXY)', () => {
  it('the session cookie is Secure and links are https when the proxy says so, and only when trusted', async () => {
    for (const trustProxy of [true, false]) {
      const server = await startInProcessApp({ trustProxy });
      try {
        const now = Date.now();
        const team = await server.store.createTeam({ name: 'proxied', maxConcurrentRuns: 5 }, now);
        const user = await server.store.createUser({ teamId: team.id, email: 'p@proxied.test', displayName: null, role: 'member' }, now);
        const minted = mintCredential(API_KEY_PREFIX);
        await server.store.createApiKey({ teamId: team.id, userId: user.id, name: 'k', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
        const headers = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'oz.example.test' };
        const signIn = await server.app.inject({ method: 'POST', url: '/api/v1/web/session', headers, payload: { api_key: minted.secret } });
        const link = await server.app.inject({ method: 'POST', url: '/api/v1/web/login-links', headers: { ...headers, authorization: `Bearer ${minted.secret}` }, payload: {} });
        if (trustProxy) {
          expect(String(signIn.headers['set-cookie'])).toMatch(/; Secure/);
          expect(link.json<{ url: string }>().url).toMatch(/^https:\/\/oz\.example\.test\/login#/);
        } else {
          expect(String(signIn.headers['set-cookie'])).not.toMatch(/Secure/);
          expect(link.json<{ url: string }>().url).toMatch(/^http:\/\/localhost(:\d+)?\/login#/);
        }
      } finally {
        await server.close();
      }
    }
  });
});
