import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  createLoginLinkSchema,
  loginLinkInfoSchema,
  loginLinkSchema,
  peekLoginLinkSchema,
  signInSchema,
  signOutResponseSchema,
  webSessionSchema,
  type WebSession as WebSessionItem,
} from '../../api/web.js';
import { toRfc3339 } from '../../core/clock.js';
import { notFound, OzError } from '../../core/errors.js';
import { randomToken } from '../../core/ids.js';
import type { Team, User } from '../../core/identity.js';
import type { WebSession } from '../../store/web-session-repository.js';
import { principalOf } from '../auth.js';
import { API_KEY_PREFIX, hashSecret } from '../credentials.js';
import type { ServerDeps } from '../deps.js';
import { publicBaseUrl } from '../public-url.js';
import { clearSessionCookie, LOGIN_LINK_TTL_MS, SESSION_COOKIE, startSession } from '../web-session.js';
import { presentTeam, presentUser } from './identity.js';

const TAGS = ['dashboard'];

const present = (session: WebSession, user: User, team: Team, path?: string): WebSessionItem => ({
  csrf_token: session.csrfToken,
  expires_at: toRfc3339(session.expiresAt),
  user: presentUser(user),
  team: presentTeam(team),
  ...(path !== undefined ? { path } : {}),
});

/** Signing in (no credential yet): an API key or a login link's token for a session cookie. */
export function webSignInRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.post(
      '/web/session',
      {
        schema: {
          body: signInSchema,
          response: { 200: webSessionSchema },
          summary: "Sign in to the dashboard: an API key, or a login link's token, for a session cookie",
          tags: TAGS,
          security: [],
        },
      },
      async (request, reply) => {
        const now = deps.clock.now();
        const { api_key: apiKey, login_token: loginToken } = request.body;
        let keyId: string;
        let path: string | undefined;
        if (apiKey !== undefined) {
          const found = apiKey.startsWith(API_KEY_PREFIX) ? await deps.store.findApiKeyByHash(hashSecret(apiKey), now) : null;
          if (!found) throw new OzError('authentication_required', 'api_key: the API key is not valid, or it has expired', { reason: 'api_key' });
          keyId = found.key.id;
        } else {
          const link = await deps.store.webSessions.consumeLoginLink(hashSecret(loginToken ?? ''), now);
          if (!link)
            throw new OzError('authentication_required', 'login_token: this login link was used already or has expired; run `oz open` for a new one', { reason: 'login_token' });
          keyId = link.keyId;
          path = link.path;
        }
        const principal = await deps.store.findApiKeyById(keyId, now);
        if (!principal) throw new OzError('authentication_required', 'the API key of this login link has expired', { reason: 'login_token' });
        // A sign-in over a live session replaces it: the old one ends on the server, not only in this browser.
        const previous = request.cookies[SESSION_COOKIE];
        if (previous) await deps.store.webSessions.end(hashSecret(previous), now);
        const session = await startSession(deps, request, reply, keyId);
        request.log.info({ user: principal.user.id, key: principal.key.prefix, via: apiKey !== undefined ? 'api_key' : 'login_link' }, 'dashboard sign-in');
        return present(session, principal.user, principal.team, path);
      },
    );
  };
}

/** Whose a login link is, without using it (no credential: the token is one). */
export function webLoginLinkPeekRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.post(
      '/web/login-links/peek',
      {
        schema: {
          body: peekLoginLinkSchema,
          response: { 200: loginLinkInfoSchema },
          summary: 'Whose a login link is and where it opens, without using it',
          tags: TAGS,
          security: [],
        },
      },
      async (request) => {
        const now = deps.clock.now();
        const link = await deps.store.webSessions.peekLoginLink(hashSecret(request.body.login_token), now);
        const principal = link ? await deps.store.findApiKeyById(link.keyId, now) : null;
        if (!link || !principal)
          throw new OzError('authentication_required', 'login_token: this login link was used already or has expired; run `oz open` for a new one', { reason: 'login_token' });
        return { user: presentUser(principal.user), team: presentTeam(principal.team), path: link.path, expires_at: toRfc3339(link.expiresAt) };
      },
    );
  };
}

/** The signed-in session (behind authentication): read it, end it, and mint login links. */
export function webSessionRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/web/session',
      { schema: { response: { 200: webSessionSchema }, summary: 'The dashboard session the cookie holds, with its CSRF token', tags: TAGS } },
      async (request) => {
        const { user, team } = principalOf(request);
        if (!request.webSession) throw new OzError('invalid_request', 'this request carries an API key, not a dashboard session cookie', { reason: 'session' });
        return present(request.webSession, user, team);
      },
    );

    r.delete(
      '/web/session',
      { schema: { response: { 200: signOutResponseSchema }, summary: 'Sign out: the session ends on the server and its cookie is cleared', tags: TAGS } },
      async (request, reply) => {
        principalOf(request);
        const session = request.webSession;
        const signedOut = session ? await deps.store.webSessions.end(session.secretHash, deps.clock.now()) : false;
        if (request.cookies[SESSION_COOKIE]) clearSessionCookie(request, reply);
        return { signed_out: signedOut };
      },
    );

    r.post(
      '/web/login-links',
      {
        schema: {
          body: createLoginLinkSchema.nullish(),
          response: { 200: loginLinkSchema },
          summary: 'A one-time link that opens the dashboard signed in as this key (what `oz open` prints)',
          tags: TAGS,
        },
      },
      async (request) => {
        const { team, key } = principalOf(request);
        const runId = request.body?.run_id;
        if (runId !== undefined && !(await deps.store.getRun(team.id, runId))) throw notFound('run', runId);
        const now = deps.clock.now();
        const token = randomToken(32);
        const expiresAt = now + LOGIN_LINK_TTL_MS;
        const path = runId === undefined ? '/runs' : `/runs/${encodeURIComponent(runId)}`;
        await deps.store.webSessions.createLoginLink({ secretHash: hashSecret(token), keyId: key.id, path, expiresAt }, now);
        // The token rides in the fragment: browsers send it to no server, log and Referer.
        return { url: `${publicBaseUrl(request)}/login#${token}`, expires_at: toRfc3339(expiresAt) };
      },
    );
  };
}
