import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { CATALOG_ID_PATTERN } from '../model-catalog.js';
import { ANY_WORKER_HOST, MAX_WORKER_LABELS, POOL_NAME_PATTERN, POOL_NAME_RULE } from '../worker-pool.js';

/**
 * The shapes settings take (src/core/settings/table.ts): each schema parses
 * the text of a flag or variable and says, in its messages, what is allowed.
 */

/** An integer within bounds; anything else (a word, a fraction) reads "must be min..max". */
export function intIn(min: number, max: number) {
  const range = `must be ${min}..${max}`;
  return z.coerce.number({ error: range }).int(`must be a whole number, ${min}..${max}`).min(min, range).max(max, range);
}

/** A number (fractions allowed) within bounds. */
export function numberIn(min: number, max: number) {
  const range = `must be ${min}..${max}`;
  return z.coerce.number({ error: range }).min(min, range).max(max, range);
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `must be one of ${values.join(', ')}` });
}

export const anyText = z.string();

export const nonEmpty = z.string().min(1, 'must not be empty');

/** A network preset's name (src/core/network-policy.ts). */
export const presetName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'must be a preset name (lowercase letters, digits, "-" and "_")');

/** An absolute path, normalised (the message repeats the value: no "got" needed). */
export const absolutePath = z
  .string()
  .refine((path) => isAbsolute(path), { error: (issue) => `${JSON.stringify(issue.input)} must be an absolute path` })
  .transform((path) => resolve(path));

/** `off`, or an absolute path. */
export const offOrAbsolutePath = z.string().transform((value, ctx): string => {
  if (value === 'off') return value;
  if (isAbsolute(value)) return resolve(value);
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} must be an absolute path (or off)`, input: value });
  return z.NEVER;
});

/** Items separated by `separator` (empty items dropped, so an empty value is an empty list), each parsed by `item`. */
export function listOf<T>(separator: string, item: z.ZodType<T, string>, trim = true) {
  return z
    .string()
    .transform((text) =>
      text
        .split(separator)
        .map((entry) => (trim ? entry.trim() : entry))
        .filter((entry) => entry.length > 0),
    )
    .pipe(z.array(item))
    .transform((items): readonly T[] => Object.freeze(items));
}

export const postgresUrl = z.string().refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

export const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** A forge's address (`file://` for tests and mirrors on disk), without trailing slashes. */
export const forgeUrl = z.url({ protocol: /^(https?|file)$/, error: 'must be an http(s) or file URL' }).transform((url) => url.replace(/\/+$/, ''));

export const MODEL_ID_PATTERN = /^(anthropic|openai|openai-compatible)\/[A-Za-z0-9._:-]{1,120}$/;

export const modelId = z.string().regex(MODEL_ID_PATTERN, 'must be provider/model with provider anthropic, openai or openai-compatible');

/** A model as a setting names it: a catalog id (`claude-4-6-sonnet`) or `provider/model`; whether the id is in the catalog is checked where the catalog is built. */
export const modelReference = z
  .string()
  .refine(
    (v) => MODEL_ID_PATTERN.test(v) || CATALOG_ID_PATTERN.test(v),
    'must be a model catalog id (e.g. claude-4-6-sonnet) or provider/model with provider anthropic, openai or openai-compatible',
  );

export const branchPrefix = z
  .string()
  .max(60)
  .regex(/^([A-Za-z0-9][A-Za-z0-9_-]*[/-]?)*$/, 'must be letters, digits, "-", "_" and "/" (e.g. oz/ or agent-)');

export const gitAuthorName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^<>\n]+$/, 'must not contain <, > or a newline');

export const gitAuthorEmail = z
  .string()
  .min(3)
  .max(200)
  .regex(/^[^<>\s]+@[^<>\s]+$/, 'must be an email address');

const ALLOWED_HOST_ENTRY = /^(\[[0-9A-Fa-f:.]+\](:\d{1,5})?|[0-9A-Fa-f:.]+\/\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*|[A-Za-z0-9_.-]+(:\d{1,5})?)$/;

export const allowedHost = z.string().regex(ALLOWED_HOST_ENTRY, 'entries must be host, host:port, an address, [v6]:port or a CIDR range');

const MASTER_KEY_FORMAT = 'must be 32 bytes as 64 hex digits or base64 (e.g. the output of `openssl rand -hex 32`)';

/** 32 bytes, as 64 hex digits or base64 (what `openssl rand -hex 32` / `-base64 32` print); null when the text is neither. */
export function masterKeyBytes(text: string): Buffer | null {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : /^[A-Za-z0-9+/]{43}=$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : null;
  return key && key.length === 32 ? key : null;
}

/** A master key; its message never repeats the value. */
export const masterKey = z.string().transform((text, ctx): Buffer => {
  const key = masterKeyBytes(text);
  if (key) return key;
  ctx.addIssue({ code: 'custom', message: MASTER_KEY_FORMAT, input: '' });
  return z.NEVER;
});

/** The key a message names (a variable, or a key file's path) when the text is not a master key. */
export function masterKeyError(source: string): string {
  return `${source}: ${MASTER_KEY_FORMAT}`;
}

/** A credential in a variable: surrounding whitespace is not part of it; blank = none. */
export const token = z.string().transform((text) => text.trim() || null);

/** An image registry as `host` or `host:port` (an address in brackets for IPv6). */
export const registryHost = z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/, 'entries must be host or host:port');

/** A worker's name or one of its labels (docs/api.md "Worker pools"); `warp` is a run's "any worker", never a worker's. */
export const poolName = z
  .string()
  .regex(POOL_NAME_PATTERN, POOL_NAME_RULE)
  .refine((v) => v !== ANY_WORKER_HOST, `"${ANY_WORKER_HOST}" is reserved: a run's worker_host "${ANY_WORKER_HOST}" means any worker`);

/** A worker's labels: comma-separated names, each at most once. */
export const poolLabels = listOf(',', poolName)
  .refine((labels) => labels.length <= MAX_WORKER_LABELS, `at most ${MAX_WORKER_LABELS} labels`)
  .transform((labels): readonly string[] => Object.freeze([...new Set(labels)]));
