import { z } from 'zod';
import { PLATFORM_ERROR_CODES } from '../core/errors.js';

/**
 * Every error answer of the API: problem+json (RFC 9457) with the Oz spec's
 * members (its `Error` schema) and our `error_code`, `reason` (docs/design.md
 * "Errors"). The server writes it (src/server/problem.ts); clients read it
 * with {@link parseProblem}.
 */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    error: z.string(),
    error_code: z.enum(PLATFORM_ERROR_CODES),
    retryable: z.boolean(),
    reason: z.string().exactOptional(),
    instance: z.string().exactOptional(),
  })
  .meta({ id: 'Problem', description: 'problem+json (RFC 9457) with the Oz error members' });

export type ProblemBody = z.infer<typeof problemSchema>;

/**
 * A refusal as a client sees it: the HTTP status, and whichever problem+json
 * members the body carried (none when it was not problem+json: a proxy's
 * page, an empty body). `code` is the body's `error_code`, kept as a string:
 * a newer server may send a code this client does not know yet.
 */
export interface Problem {
  readonly status: number;
  readonly type: string | undefined;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  readonly code: string | undefined;
  readonly retryable: boolean | undefined;
  readonly reason: string | undefined;
  readonly instance: string | undefined;
}

/** The one reader of error bodies: the API client and the worker's protocol client both use it. */
export function parseProblem(status: number, text: string): Problem {
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: only the status is known.
  }
  const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const member = (key: string): string | undefined => (typeof fields[key] === 'string' ? fields[key] : undefined);
  return {
    status,
    type: member('type'),
    title: member('title'),
    detail: member('detail'),
    code: member('error_code'),
    retryable: typeof fields.retryable === 'boolean' ? fields.retryable : undefined,
    reason: member('reason'),
    instance: member('instance'),
  };
}
