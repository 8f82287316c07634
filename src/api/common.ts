import { z } from 'zod';
import { ANY_WORKER_HOST, POOL_NAME_PATTERN, POOL_NAME_RULE } from '../core/worker-pool.js';

/** Env var names a user may set (docs/design.md "Secrets" 4 lists the reserved ones). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const RESERVED_EXACT = new Set(['PATH', 'HOME', 'USER', 'SHELL', 'BASH_ENV', 'ENV', 'NODE_OPTIONS']);

export function isReservedEnvName(name: string): boolean {
  return RESERVED_EXACT.has(name) || name.startsWith('LD_') || name.startsWith('OZ_') || name.startsWith('WARP_');
}

export const envName = z
  .string()
  .regex(ENV_NAME, 'must be an environment variable name: letters, digits and _, not starting with a digit')
  .refine((n) => !isReservedEnvName(n), {
    message: 'is reserved (PATH, HOME, USER, SHELL, LD_*, BASH_ENV, ENV, NODE_OPTIONS, OZ_*, WARP_*)',
  });

/** Why a name cannot be an env var, or null when it can. */
export function envNameProblem(name: string): string | null {
  if (!ENV_NAME.test(name)) return 'must be an environment variable name: letters, digits and _, not starting with a digit';
  if (isReservedEnvName(name)) return 'is reserved (PATH, HOME, USER, SHELL, LD_*, BASH_ENV, ENV, NODE_OPTIONS, OZ_*, WARP_*)';
  return null;
}

export const rfc3339 = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z' });

export const idParam = z.string().min(1).max(200);

/** A run's (or an environment's) `worker_host`: a worker's name or label, or `warp` (Oz's hosted value: any worker). */
export const workerHostSchema = z.string({ error: `must be a string: a worker's name or label, or "${ANY_WORKER_HOST}" for any worker` }).regex(POOL_NAME_PATTERN, {
  message: `must be a worker's name or label, or "${ANY_WORKER_HOST}" for any worker: ${POOL_NAME_RULE}`,
});

/** A maximum runtime in seconds (a run's own, an environment's limit): up to a week. */
export const maxRuntimeSeconds = z
  .number()
  .int()
  .min(1)
  .max(7 * 24 * 3600);

// Response building blocks. Responses are encoded through their schemas on the
// way out, so these document formats without re-checking them: a check that
// failed there would turn a good answer into a 500.

/** A timestamp in a response: RFC 3339, UTC, as `toRfc3339` writes it. */
export const timestamp = z.string().meta({ format: 'date-time', description: 'RFC 3339' });

/** The spec's RunCreatorInfo, as far as we fill it: who made or changed something. */
export const creatorSchema = z.object({ type: z.literal('user'), uid: z.string() });

/** The spec's Scope: a team's resource, or one user's personal one. */
export const scopeSchema = z.object({ type: z.enum(['Team', 'User']), uid: z.string() });

/** A 204: no body at all. */
export const noContentSchema = z.undefined().meta({ description: 'No Content' });

/** `{success}` of the spec's deletes. */
export const successSchema = z.object({ success: z.boolean() });

export type SuccessResponse = z.infer<typeof successSchema>;
export type CreatorInfo = z.infer<typeof creatorSchema>;
export type ScopeInfo = z.infer<typeof scopeSchema>;
