import { z } from 'zod';
import { timestamp } from './common.js';
import { limitsItemSchema, limitsSchema } from './environments.js';

/** Who calls and who administers (ours): `/me`, API keys, teams, users, worker tokens (docs/api.md "Admins"). */

const keyName = z.string().trim().min(1, 'must not be empty').max(100);
const maxConcurrentRuns = z.number().int().min(1).max(10_000);

export const newKeySchema = z
  .object({
    name: keyName,
    /** Seconds until the key expires; null or absent = never. */
    expires_in_seconds: z
      .number()
      .int()
      .min(60, 'must be at least 60')
      .max(10 * 365 * 86400)
      .nullable()
      .optional(),
  })
  .strict();

export const createTeamSchema = z.object({ name: keyName, max_concurrent_runs: maxConcurrentRuns.optional(), limit_ceilings: limitsSchema.optional() }).strict();

/** Given fields replace; `limit_ceilings: null` removes the team's own ceilings. */
export const patchTeamSchema = z
  .object({ max_concurrent_runs: maxConcurrentRuns.optional(), limit_ceilings: limitsSchema.nullable().optional() })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: 'give at least one field to change' });

export const createUserSchema = z
  .object({
    email: z.email('must be an email address').max(320),
    team: z.string().min(1).max(200).describe('team name or uid'),
    role: z.enum(['admin', 'member']).optional(),
    display_name: z.string().trim().min(1).max(200).optional(),
  })
  .strict();

export const createWorkerTokenSchema = z.object({ name: keyName }).strict();

export type NewKeyInput = z.input<typeof newKeySchema>;
export type CreateTeamInput = z.input<typeof createTeamSchema>;
export type PatchTeamInput = z.input<typeof patchTeamSchema>;
export type CreateUserInput = z.input<typeof createUserSchema>;
export type CreateWorkerTokenInput = z.input<typeof createWorkerTokenSchema>;

export const teamItemSchema = z
  .object({
    uid: z.string(),
    name: z.string(),
    max_concurrent_runs: z.number().int(),
    limit_ceilings: limitsItemSchema.meta({ description: "the team's own ceilings, below the operator's; {} = the operator's" }),
    platform: z.boolean().meta({ description: "the deployment's first team: its admins administer the deployment" }),
    created_at: timestamp,
  })
  .meta({ id: 'Team' });

export const userItemSchema = z
  .object({
    uid: z.string(),
    team_uid: z.string(),
    email: z.string(),
    display_name: z.string().nullable(),
    role: z.enum(['admin', 'member']),
    created_at: timestamp,
  })
  .meta({ id: 'User' });

/** An API key without its secret. */
export const apiKeyItemSchema = z
  .object({
    uid: z.string(),
    name: z.string(),
    prefix: z.string().meta({ description: 'the visible start of the key' }),
    user_uid: z.string(),
    created_at: timestamp,
    expires_at: timestamp.nullable(),
    expired: z.boolean(),
  })
  .meta({ id: 'ApiKey' });

/** A key just made: the only answer that carries its secret. */
export const createdApiKeySchema = apiKeyItemSchema.extend({ key: z.string().meta({ description: 'the secret, shown only here' }) }).meta({ id: 'CreatedApiKey' });

export const meResponseSchema = z.object({
  user: userItemSchema,
  team: teamItemSchema,
  api_key: apiKeyItemSchema,
  limits: z
    .object({ defaults: limitsItemSchema, maxima: limitsItemSchema })
    .meta({ description: "what the team's environments and runs get where they set nothing, and the most they may set" }),
});

export const listTeamsResponseSchema = z.object({ teams: z.array(teamItemSchema) });
export type ListTeamsResponse = z.infer<typeof listTeamsResponseSchema>;
export const listUsersResponseSchema = z.object({ users: z.array(userItemSchema) });
export type ListUsersResponse = z.infer<typeof listUsersResponseSchema>;

export const listApiKeysResponseSchema = z.object({ api_keys: z.array(apiKeyItemSchema) });
export const expireApiKeyResponseSchema = z.object({ uid: z.string(), expired: z.boolean() });

export const workerTokenItemSchema = z
  .object({ uid: z.string(), name: z.string(), prefix: z.string(), created_at: timestamp, revoked_at: timestamp.nullable() })
  .meta({ id: 'WorkerToken' });
export const createdWorkerTokenSchema = workerTokenItemSchema.extend({ token: z.string().meta({ description: 'the secret, shown only here' }) }).meta({ id: 'CreatedWorkerToken' });
export const listWorkerTokensResponseSchema = z.object({ worker_tokens: z.array(workerTokenItemSchema) });
export const revokeWorkerTokenResponseSchema = z.object({ uid: z.string(), revoked: z.boolean() });

/** A worker as its claims describe it (docs/api.md "Worker pools"): `GET /admin/workers`. */
export const workerItemSchema = z
  .object({
    id: z.string().meta({ description: "the worker process's id (host, pid and a random part): a new one on every start" }),
    name: z.string(),
    labels: z.array(z.string()),
    backend: z.string().meta({ description: 'its sandbox backend: bwrap, direct' }),
    capacity: z.number().int().meta({ description: 'how many runs it executes at once' }),
    running_runs: z.number().int().meta({ description: 'runs it holds now (a leased state, the lease not expired)' }),
    version: z.string(),
    token_name: z.string().nullable().meta({ description: "the worker token it claims with (embedded: a server's own worker)" }),
    first_seen_at: timestamp,
    last_seen_at: timestamp.meta({ description: 'its last claim poll or heartbeat' }),
    online: z.boolean().meta({ description: 'seen in the last 5 minutes: what routing counts as present' }),
  })
  .meta({ id: 'Worker' });
export const listWorkersResponseSchema = z.object({ workers: z.array(workerItemSchema) });

export type TeamItem = z.infer<typeof teamItemSchema>;
export type UserItem = z.infer<typeof userItemSchema>;
export type ApiKeyItem = z.infer<typeof apiKeyItemSchema>;
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;
export type MeResponse = z.infer<typeof meResponseSchema>;
export type ListApiKeysResponse = z.infer<typeof listApiKeysResponseSchema>;
export type ExpireApiKeyResponse = z.infer<typeof expireApiKeyResponseSchema>;
export type WorkerTokenItem = z.infer<typeof workerTokenItemSchema>;
export type CreatedWorkerToken = z.infer<typeof createdWorkerTokenSchema>;
export type ListWorkerTokensResponse = z.infer<typeof listWorkerTokensResponseSchema>;
export type RevokeWorkerTokenResponse = z.infer<typeof revokeWorkerTokenResponseSchema>;
export type WorkerItem = z.infer<typeof workerItemSchema>;
export type ListWorkersResponse = z.infer<typeof listWorkersResponseSchema>;
