/**
 * The header that carries a dashboard session's CSRF token (docs/dashboard.md
 * "Signing in"). On its own, with no imports, so the dashboard's bundle can
 * take it without the schemas.
 */
export const CSRF_HEADER = 'x-oz-csrf';
