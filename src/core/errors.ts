/**
 * Errors by who is at fault (docs/design.md "Errors"). Every error the platform
 * raises on purpose is an {@link OzError}: a `code` from the Oz API's
 * `PlatformErrorCode` catalog, an HTTP `status`, a `retryable` flag and an
 * optional `reason` that carries precision the catalog lacks
 * (`worker_lost`, `stale_lease`, the name of a rejected field, …).
 * Routes throw; one handler maps to problem+json.
 */

export const PLATFORM_ERROR_CODES = [
  'insufficient_credits',
  'feature_not_available',
  'external_authentication_required',
  'not_authorized',
  'invalid_request',
  'resource_not_found',
  'budget_exceeded',
  'integration_disabled',
  'integration_not_configured',
  'operation_not_supported',
  'environment_setup_failed',
  'content_policy_violation',
  'conflict',
  'authentication_required',
  'resource_unavailable',
  'internal_error',
] as const;

export type PlatformErrorCode = (typeof PLATFORM_ERROR_CODES)[number];

/** Default HTTP status and retryability per code. */
const DEFAULTS: Record<PlatformErrorCode, { status: number; retryable: boolean; title: string }> = {
  insufficient_credits: { status: 402, retryable: false, title: 'Insufficient credits' },
  // The spec documents it as a 403 ("No permission or feature not available").
  feature_not_available: { status: 403, retryable: false, title: 'Feature not available' },
  external_authentication_required: { status: 403, retryable: false, title: 'External authentication required' },
  not_authorized: { status: 403, retryable: false, title: 'Not authorized' },
  invalid_request: { status: 400, retryable: false, title: 'Invalid request' },
  resource_not_found: { status: 404, retryable: false, title: 'Resource not found' },
  budget_exceeded: { status: 429, retryable: false, title: 'Budget exceeded' },
  integration_disabled: { status: 400, retryable: false, title: 'Integration disabled' },
  integration_not_configured: { status: 400, retryable: false, title: 'Integration not configured' },
  operation_not_supported: { status: 400, retryable: false, title: 'Operation not supported' },
  environment_setup_failed: { status: 400, retryable: false, title: 'Environment setup failed' },
  content_policy_violation: { status: 400, retryable: false, title: 'Content policy violation' },
  conflict: { status: 409, retryable: false, title: 'Conflict' },
  authentication_required: { status: 401, retryable: false, title: 'Authentication required' },
  resource_unavailable: { status: 503, retryable: true, title: 'Resource unavailable' },
  internal_error: { status: 500, retryable: true, title: 'Internal error' },
};

export interface OzErrorOptions {
  reason?: string;
  status?: number;
  retryable?: boolean;
  cause?: unknown;
}

export class OzError extends Error {
  readonly code: PlatformErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly reason: string | undefined;
  readonly title: string;

  constructor(code: PlatformErrorCode, message: string, options: OzErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OzError';
    const defaults = DEFAULTS[code];
    this.code = code;
    this.status = options.status ?? defaults.status;
    this.retryable = options.retryable ?? defaults.retryable;
    this.reason = options.reason;
    this.title = defaults.title;
  }
}

export function invalidRequest(field: string, message: string): OzError {
  return new OzError('invalid_request', `${field}: ${message}`, { reason: field });
}

export function notFound(what: string, id: string): OzError {
  return new OzError('resource_not_found', `${what} ${id} not found`);
}

export function conflict(message: string, reason: string): OzError {
  return new OzError('conflict', message, { reason });
}

export function isOzError(error: unknown): error is OzError {
  return error instanceof OzError;
}

/** Turn anything thrown into an Error (third-party code can throw strings). */
export function coerceError(error: unknown): Error {
  if (error instanceof Error) return error;
  return new Error(typeof error === 'string' ? error : JSON.stringify(error));
}
