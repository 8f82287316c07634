import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { ProblemBody } from '../api/problem.js';
import { OzError } from '../core/errors.js';

/**
 * problem+json (RFC 9457) with the Oz spec's members. Every error reply goes
 * through {@link problemHandler}: our OzErrors, the framework's own 400 / 404 /
 * 413 / 415, request validation, and anything unexpected (logged, then a
 * generic 500 that leaks nothing). Its shape is the contract's
 * (src/api/problem.ts), which clients parse.
 */
export const PROBLEM_TYPE_BASE = 'https://docs.warp.dev/reference/api-and-sdk/troubleshooting/errors/';

export function problemOf(error: OzError, instance?: string): ProblemBody {
  return {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    error: `${error.title}: ${error.message}`,
    error_code: error.code,
    retryable: error.retryable,
    ...(error.reason !== undefined ? { reason: error.reason } : {}),
    ...(instance !== undefined ? { instance } : {}),
  };
}

/** `/config/harness` in the body → `config.harness`; query and path fields are prefixed. */
function fieldPath(context: string | undefined, instancePath: string): string {
  const dotted = instancePath
    .split('/')
    .filter((p) => p.length > 0)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : `${i === 0 ? '' : '.'}${p}`))
    .join('');
  if (context === 'querystring') return `query.${dotted}`;
  if (context === 'params') return `path.${dotted}`;
  if (context === 'headers') return `header.${dotted}`;
  return dotted || '(body)';
}

/** Map whatever was thrown to an OzError. */
export function toOzError(error: unknown): OzError {
  if (error instanceof OzError) return error;
  const fe = error as FastifyError & { validationContext?: string };
  if (hasZodFastifySchemaValidationErrors(fe)) {
    // An unknown key is reported on its parent object; name the key itself.
    const pathOf = (v: (typeof fe.validation)[number]): string => {
      const keys = (v.params as { keys?: unknown }).keys;
      const key = v.keyword === 'unrecognized_keys' && Array.isArray(keys) && typeof keys[0] === 'string' ? `/${keys[0]}` : '';
      return fieldPath(fe.validationContext, `${v.instancePath}${key}`);
    };
    const messages = fe.validation.map((v) => (v.keyword === 'unrecognized_keys' ? `${pathOf(v)}: unknown field` : `${pathOf(v)}: ${v.message ?? 'invalid'}`));
    const first = fe.validation[0];
    return new OzError('invalid_request', messages.join('; '), { ...(first ? { reason: pathOf(first) } : {}) });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OzError('invalid_request', 'Content-Type must be application/json', { status: 415, reason: 'content-type' });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OzError('invalid_request', 'request body is too large', { status: 413, reason: 'body' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new OzError('invalid_request', 'the JSON body is empty', { reason: 'body' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new OzError('invalid_request', `the body is not valid JSON: ${fe.message}`, { reason: 'body' });
  }
  if (fe instanceof SyntaxError || (typeof fe.statusCode === 'number' && fe.statusCode === 400)) {
    return new OzError('invalid_request', fe.message, { reason: 'body' });
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new OzError('invalid_request', fe.message, { status: fe.statusCode });
  }
  return new OzError('internal_error', 'an unexpected error occurred; it has been logged', { cause: error });
}

export function sendProblem(reply: FastifyReply, error: OzError, request: FastifyRequest): FastifyReply {
  // A 503 (the database is unreachable, …) is worth retrying soon.
  if (error.status === 503) reply.header('retry-after', '1');
  return reply
    .status(error.status)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(problemOf(error, request.url.split('?')[0]));
}

export function problemHandler(this: unknown, error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const oz = toOzError(error);
  if (oz.code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, oz, request);
}
