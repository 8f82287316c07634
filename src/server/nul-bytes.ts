import type { FastifyRequest } from 'fastify';
import { OzError } from '../core/errors.js';

/** Where in a parsed JSON value the first NUL character is (a string or a key), as `a.b[0].c`; null when none. */
export function findNul(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNul(value[i], `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      const here = path === '' ? key : `${path}.${key}`;
      if (key.includes('\u0000')) return here;
      const found = findNul(inner, here);
      if (found !== null) return found;
    }
  }
  return null;
}

/**
 * preValidation hook of the user API: a NUL character anywhere in the body,
 * the query or the path is refused with a 400 naming the field. PostgreSQL's
 * text cannot hold one (the write failed as a 500), and neither can a process
 * argument or environment variable (a run carrying one ended in
 * `internal_error`). One hook for every route, so no schema can forget it.
 */
export async function refuseNulBytes(request: FastifyRequest): Promise<void> {
  const parts: [string, unknown][] = [
    ['', request.body],
    ['query.', request.query],
    ['path.', request.params],
  ];
  for (const [prefix, value] of parts) {
    const found = findNul(value);
    if (found === null) continue;
    const field = `${prefix}${found}` || '(body)';
    throw new OzError('invalid_request', `${field}: must not contain NUL characters (\\u0000)`, { reason: field });
  }
}
