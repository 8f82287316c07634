import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CSRF_HEADER } from '../api/web.js';
import { OzError } from '../core/errors.js';
import { randomToken } from '../core/ids.js';
import type { WebSession } from '../store/web-session-repository.js';
import type { Principal } from './auth.js';
import { hashSecret } from './credentials.js';
import type { ServerDeps } from './deps.js';

/** The dashboard's session cookie (HttpOnly, SameSite=Strict, the whole site). */
export const SESSION_COOKIE = 'oz_session';
/** A one-time login link (`oz open`) is good for this long. */
export const LOGIN_LINK_TTL_MS = 120_000;
/** Default session length when the deployment sets none (`OZ_WEB_SESSION_HOURS`). */
export const DEFAULT_WEB_SESSION_TTL_MS = 12 * 3600_000;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The dashboard session the request came with (cookie), else null (an API key). */
    webSession: WebSession | null;
  }
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Who a request with the session cookie acts as. A request that changes
 * anything must carry the session's CSRF token in X-Oz-CSRF: another site
 * can make the browser send the cookie (SameSite is a second fence, not the
 * only one), but it cannot read the token.
 */
export async function sessionPrincipal(deps: ServerDeps, request: FastifyRequest, cookie: string): Promise<Principal> {
  const found = await deps.store.webSessions.find(hashSecret(cookie), deps.clock.now());
  if (!found) throw new OzError('authentication_required', 'your dashboard session has ended: sign in again', { reason: 'session' });
  if (!SAFE_METHODS.has(request.method)) {
    const token = request.headers[CSRF_HEADER];
    if (typeof token !== 'string' || !sameToken(token, found.session.csrfToken)) {
      throw new OzError('not_authorized', `a request made with the dashboard's session cookie must carry its CSRF token in the ${CSRF_HEADER} header`, { reason: 'csrf_token' });
    }
  }
  request.webSession = found.session;
  return { key: found.key, user: found.user, team: found.team };
}

/** Start a session acting as `keyId`, and set its cookie on the reply. */
export async function startSession(deps: ServerDeps, request: FastifyRequest, reply: FastifyReply, keyId: string): Promise<WebSession> {
  const now = deps.clock.now();
  const secret = `ozs_${randomToken(32)}`;
  const ttlMs = deps.webSessionTtlMs ?? DEFAULT_WEB_SESSION_TTL_MS;
  await deps.store.webSessions.prune(now);
  const session = await deps.store.webSessions.create({ secretHash: hashSecret(secret), keyId, csrfToken: randomToken(32), expiresAt: now + ttlMs }, now);
  reply.setCookie(SESSION_COOKIE, secret, {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: request.protocol === 'https',
    maxAge: Math.floor(ttlMs / 1000),
  });
  return session;
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/', secure: request.protocol === 'https' });
}
