import { CSRF_HEADER } from '../../src/api/csrf.js';
import { OzClient } from '../../src/client/oz-client.js';
import { OzClientError } from '../../src/client/client-error.js';

/**
 * The dashboard speaks only the public API (docs/dashboard.md), through the
 * same typed client the CLI uses. The browser sends the session cookie
 * (same origin); every request also carries the session's CSRF token, which
 * the server requires of everything that changes state.
 */
let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export const client = new OzClient({
  serverUrl: window.location.origin,
  apiKey: null,
  fetch: (input, init) => window.fetch(input, { ...init, credentials: 'same-origin' }),
  headers: () => (csrfToken ? { [CSRF_HEADER]: csrfToken } : {}),
});

export { OzClientError };

/** The field an API error names (`reason`), e.g. `prompt` or `config.environment_id`. */
export function errorField(error: unknown): string | null {
  return error instanceof OzClientError ? (error.reason ?? null) : null;
}

export function errorMessage(error: unknown): string {
  if (error instanceof OzClientError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

export const isNotFound = (error: unknown): boolean => error instanceof OzClientError && error.status === 404;
export const isSignedOut = (error: unknown): boolean => error instanceof OzClientError && error.status === 401;
