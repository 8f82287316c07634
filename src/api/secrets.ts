import { z } from 'zod';
import { SECRET_MIN_LENGTH, SECRET_TYPES } from '../core/secret.js';
import { envName, timestamp } from './common.js';

/** A value: never empty, never short enough to mask innocent text, no NUL (it becomes an environment variable). */
const value = z
  .string()
  .min(1, 'must not be empty')
  .min(SECRET_MIN_LENGTH, `must be at least ${SECRET_MIN_LENGTH} characters (a shorter value would mask innocent text in transcripts)`)
  .refine((v) => !v.includes('\0'), { message: 'must not contain a NUL character' });

const type = z.enum(SECRET_TYPES, { message: `must be one of ${SECRET_TYPES.join(', ')}` });
const description = z.string().max(240, 'must be at most 240 characters');
/** A `codex-api-key`'s upstream: an http(s) URL (the server's `/v1` base, as Codex's `base_url`). */
const baseUrl = z
  .string()
  .max(2000)
  .refine((v) => /^https?:\/\/[^\s/]+/.test(v) && URL.canParse(v), { message: 'must be an http:// or https:// URL' })
  // Credentials in it would be shown to every reader of the secret's metadata (and are never sent: the key is).
  .refine((v) => !URL.canParse(v) || (new URL(v).username === '' && new URL(v).password === ''), {
    message: 'must not contain a user name or password (the key is the credential)',
  })
  .refine((v) => !URL.canParse(v) || (new URL(v).search === '' && new URL(v).hash === ''), { message: 'must not have a query string or fragment' });

export const createSecretSchema = z
  .object({
    name: envName,
    value,
    type: type.optional(),
    description: description.optional(),
    /** false = personal to the caller; default: the team's. */
    team: z.boolean().optional(),
    setup_only: z.boolean().optional(),
    /** Only with `type: "codex-api-key"`. */
    base_url: baseUrl.optional(),
  })
  .strict();

export const patchSecretSchema = z
  .object({
    value: value.optional(),
    type: type.optional(),
    description: description.nullable().optional(),
    setup_only: z.boolean().optional(),
    /** Only on a `codex-api-key` secret; null removes it. */
    base_url: baseUrl.nullable().optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: 'give at least one field to change' });

export const secretScopeQuery = z.object({ scope: z.enum(['team', 'personal'], { message: 'must be "team" or "personal"' }).default('team') }).strict();

export type CreateSecretBody = z.infer<typeof createSecretSchema>;
export type PatchSecretBody = z.infer<typeof patchSecretSchema>;
export type CreateSecretInput = z.input<typeof createSecretSchema>;
export type PatchSecretInput = z.input<typeof patchSecretSchema>;

/** A secret as the API shows it: metadata only; the value is never readable again. */
export const secretItemSchema = z
  .object({
    uid: z.string(),
    name: z.string(),
    type: z.enum(SECRET_TYPES),
    scope: z.enum(['team', 'personal']),
    variable: z.string().meta({ description: 'the environment variable the secret becomes in runs' }),
    description: z.string().nullable(),
    setup_only: z.boolean(),
    base_url: z.string().exactOptional().meta({ description: "a codex-api-key's upstream, when it has one" }),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'Secret' });

export const listSecretsResponseSchema = z.object({ secrets: z.array(secretItemSchema) });

export type SecretItem = z.infer<typeof secretItemSchema>;
export type ListSecretsResponse = z.infer<typeof listSecretsResponseSchema>;
