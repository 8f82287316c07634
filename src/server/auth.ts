import type { FastifyRequest } from 'fastify';
import { OzError } from '../core/errors.js';
import type { ApiKey, Team, User } from '../core/identity.js';
import type { ServerDeps } from './deps.js';
import { API_KEY_PREFIX, hashSecret } from './credentials.js';
import { SESSION_COOKIE, sessionPrincipal } from './web-session.js';

/** Who is calling: a user of a team, through one of their API keys. */
export interface Principal {
  team: Team;
  user: User;
  key: ApiKey;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw new OzError('authentication_required', 'Authorization header must be "Bearer <API key>"');
  return match[1];
}

/**
 * onRequest hook for the user API: resolves the bearer key, else the
 * dashboard's session cookie (src/server/web-session.ts), or answers 401.
 * A bearer key wins over a cookie: a script's key means what it says.
 */
export function authenticate(deps: ServerDeps) {
  return async (request: FastifyRequest): Promise<void> => {
    const secret = bearer(request);
    if (!secret) {
      const cookie = request.cookies[SESSION_COOKIE];
      if (cookie) {
        request.principal = await sessionPrincipal(deps, request, cookie);
        return;
      }
      throw new OzError('authentication_required', 'an API key is required: send "Authorization: Bearer <key>"');
    }
    const found = secret.startsWith(API_KEY_PREFIX) ? await deps.store.findApiKeyByHash(hashSecret(secret), deps.clock.now()) : null;
    if (!found) throw new OzError('authentication_required', 'the API key is not valid, or it has expired');
    request.principal = found;
  };
}

/** The authenticated caller (routes behind {@link authenticate}). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new OzError('authentication_required', 'not authenticated');
  return request.principal;
}

export function requireAdmin(request: FastifyRequest): Principal {
  const principal = principalOf(request);
  if (principal.user.role !== 'admin') {
    throw new OzError('not_authorized', 'this operation needs an admin API key');
  }
  return principal;
}
