import { ImageReferenceSyntaxError, parseImageReference } from '../core/image-reference.js';
import { z } from 'zod';
import { NETWORK_POLICIES } from '../core/environment.js';
import { domainRuleProblem, internalRangeProblem, MAX_DOMAIN_RULES, MAX_INTERNAL_RANGES, parseInternalRange, presetNameProblem } from '../core/network-policy.js';
import { creatorSchema, envName, envNameProblem, maxRuntimeSeconds, scopeSchema, successSchema, timestamp, workerHostSchema } from './common.js';

/** `owner/repo` as on GitHub. */
const GITHUB_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** Any git URL we can fetch: https, http, ssh, git, file, or scp-like `user@host:path`. */
const GIT_URL = /^(?:(?:https?|ssh|git|file):\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$/;

/** A branch name git accepts (a conservative subset of check-ref-format). */
const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/-]{1,200}(?<!\.lock)(?<![./])$/;

export const githubRepoSchema = z
  .object({
    owner: z.string().regex(GITHUB_NAME, 'must be a GitHub owner name'),
    repo: z.string().regex(GITHUB_NAME, 'must be a GitHub repository name'),
  })
  .strict();

export const repoSpecSchema = z
  .object({
    url: z.string().max(2000).regex(GIT_URL, 'must be a git URL (https://, ssh://, git://, file:// or user@host:path)'),
    branch: z.string().regex(BRANCH, 'must be a valid branch name').optional(),
  })
  .strict();

export const limitsSchema = z
  .object({
    max_runtime_seconds: maxRuntimeSeconds.optional(),
    pids: z.number().int().min(16).max(100_000).optional(),
    memory_mb: z.number().int().min(64).max(1_048_576).optional(),
    disk_mb: z.number().int().min(16).max(10_485_760).optional(),
    output_mb: z.number().int().min(1).max(10_240).optional(),
    /** CPU time in cores, fractional (0.5 = half a core). */
    cpus: z.number().min(0.01).max(1024).optional(),
  })
  .strict();

// Keys are checked here rather than with a key schema: zod reports a bad record
// key only as "Invalid key in record", and users need to know why.
const envSchema = z.record(z.string(), z.string().max(128 * 1024)).superRefine((vars, ctx) => {
  const names = Object.keys(vars);
  if (names.length > 200) ctx.addIssue({ code: 'custom', message: 'at most 200 variables' });
  for (const name of names) {
    const problem = envNameProblem(name);
    if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
  }
});

/** Setup and maintenance commands: shell command lines, run in order. */
const commandList = z.array(z.string().trim().min(1, 'must not be empty').max(10_000, 'must be at most 10000 characters')).max(100, 'at most 100 commands');

/** A list of strings each checked by `problem` (its message names the entry), without repeats. */
function checkedList(max: number, what: string, problem: (entry: string) => string | null) {
  return z
    .array(z.string().max(300))
    .max(max, `at most ${max} ${what}`)
    .superRefine((entries, ctx) => {
      entries.forEach((entry, i) => {
        const why = problem(entry);
        if (why) ctx.addIssue({ code: 'custom', path: [i], message: why });
      });
    })
    .transform((entries) => [...new Set(entries.map((entry) => entry.trim().toLowerCase()))]);
}

/**
 * `owner/repo` or `owner/repo:path/to/devcontainer.json` on GitHub: the
 * devcontainer.json an environment is made from (docs/environments.md
 * "devcontainer.json"); the path defaults to `.devcontainer/devcontainer.json`.
 */
export const DEVCONTAINER_DEFAULT_PATH = '.devcontainer/devcontainer.json';
const DEVCONTAINER = /^([A-Za-z0-9_.-]{1,100})\/([A-Za-z0-9_.-]{1,100})(?::(.+))?$/;

export interface DevcontainerSource {
  owner: string;
  repo: string;
  path: string;
}

/** A path in a repository, relative, without `.` or `..` segments. */
function repoPathProblem(path: string): string | null {
  if (path.length > 500) return 'the path must be at most 500 characters';
  if (path.startsWith('/') || path.endsWith('/')) return 'the path must be relative to the repository root and name a file';
  if (path.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return 'the path must not have empty, "." or ".." segments';
  if (path.includes('\\') || [...path].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return 'the path must not hold backslashes or control characters';
  return null;
}

export const devcontainerSchema = z
  .string()
  .trim()
  .superRefine((value, ctx) => {
    const m = DEVCONTAINER.exec(value);
    if (!m || [m[1], m[2]].some((name) => name === '.' || name === '..')) {
      ctx.addIssue({ code: 'custom', message: 'must be owner/repo or owner/repo:path/to/devcontainer.json (a GitHub repository)' });
      return;
    }
    const problem = m[3] !== undefined ? repoPathProblem(m[3]) : null;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .transform((value): DevcontainerSource => {
    const m = DEVCONTAINER.exec(value) as RegExpExecArray;
    return { owner: m[1] as string, repo: m[2] as string, path: m[3] ?? DEVCONTAINER_DEFAULT_PATH };
  });

const fields = {
  name: z.string().trim().min(1, 'must not be empty').max(100),
  description: z.string().max(240, 'must be at most 240 characters'),
  docker_image: z
    .string()
    .trim()
    .min(1)
    .max(500)
    .superRefine((value, ctx) => {
      // Checked where it is written, not first at a run's start: `node:22`, `ghcr.io/org/img:tag`, `127.0.0.1:5000/dev:1`, `…@sha256:…`.
      try {
        parseImageReference(value);
      } catch (error) {
        if (!(error instanceof ImageReferenceSyntaxError)) throw error;
        ctx.addIssue({ code: 'custom', message: `is not an image reference: ${error.why}` });
      }
    }),
  agent_user: z
    .string()
    .max(64)
    .regex(/^([A-Za-z_][A-Za-z0-9_.-]*|\d+)(:([A-Za-z_][A-Za-z0-9_.-]*|\d+))?$/, 'must be a user name or uid, optionally with :group or :gid (as an image USER)'),
  github_repos: z.array(githubRepoSchema).max(50),
  repos: z.array(repoSpecSchema).max(50),
  setup_commands: commandList,
  maintenance_commands: commandList,
  env: envSchema,
  network: z.enum(NETWORK_POLICIES, { message: 'must be "off", "allowlist" or "on"' }),
  // Under `allowlist` (docs/network.md): `example.com`, `*.example.com`, either with `:port`; presets by name.
  allow_domains: checkedList(MAX_DOMAIN_RULES, 'domain rules', domainRuleProblem),
  allow_presets: checkedList(50, 'presets', presetNameProblem),
  // An admin's: internal ranges (CIDR) its runs may reach anyway.
  allow_internal_ranges: checkedList(MAX_INTERNAL_RANGES, 'ranges', internalRangeProblem).transform((ranges) => [...new Set(ranges.map(parseInternalRange))]),
  secrets: z.array(envName).max(100),
  limits: limitsSchema,
  // Where its runs go when they name no worker_host themselves (docs/api.md "Worker pools"); "warp": any worker.
  worker_host: workerHostSchema,
};

/** Every field, none required: what create and PATCH start from. */
const optionalFields = z.object(fields).partial();

export const createEnvironmentSchema = optionalFields
  .extend({
    name: fields.name,
    team: z.boolean().optional(),
    providers: z.unknown().optional(),
    /** Ours: build the environment from a devcontainer.json on GitHub; the fields given here win over the file's. */
    devcontainer: devcontainerSchema.optional(),
  })
  .strict();

/** PATCH: each given field replaces the stored one; `description`/`docker_image`/`agent_user`/`worker_host` null removes it. */
export const patchEnvironmentSchema = optionalFields
  .extend({
    description: fields.description.nullable().optional(),
    docker_image: fields.docker_image.nullable().optional(),
    agent_user: fields.agent_user.nullable().optional(),
    worker_host: fields.worker_host.nullable().optional(),
    providers: z.unknown().optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: 'give at least one field to change' });

export type CreateEnvironmentBody = z.infer<typeof createEnvironmentSchema>;
export type PatchEnvironmentBody = z.infer<typeof patchEnvironmentSchema>;
export type CreateEnvironmentInput = z.input<typeof createEnvironmentSchema>;
export type PatchEnvironmentInput = z.input<typeof patchEnvironmentSchema>;
export type LimitsBody = z.infer<typeof limitsSchema>;

/**
 * Limits in responses, in the API's units (an environment's `limits`, a
 * team's `limit_ceilings`, the `limits` of `/me`): only those set, and
 * without the request's bounds (the operator's own may lie outside them).
 */
export const limitsItemSchema = z.object({
  max_runtime_seconds: z.number().exactOptional(),
  pids: z.number().exactOptional(),
  memory_mb: z.number().exactOptional(),
  disk_mb: z.number().exactOptional(),
  output_mb: z.number().exactOptional(),
  cpus: z.number().exactOptional(),
});

/**
 * The fields a devcontainer.json gives an environment, checked as the
 * request's own are (the server maps the file, then validates the result).
 */
export const devcontainerFieldsSchema = z
  .object({
    docker_image: fields.docker_image.optional(),
    agent_user: fields.agent_user.optional(),
    env: fields.env.optional(),
    setup_commands: fields.setup_commands.optional(),
    maintenance_commands: fields.maintenance_commands.optional(),
  })
  .strict();
export type DevcontainerFields = z.infer<typeof devcontainerFieldsSchema>;

/** The spec's CloudEnvironmentConfig; ours beside its fields: `repos` (every repository, GitHub or not), `maintenance_commands`, `env`, `network` and its `allow_*` rules, `secrets`, `limits`, `worker_host`. */
export const environmentConfigItemSchema = z.object({
  name: z.string(),
  description: z.string().nullable(),
  docker_image: z.string().exactOptional(),
  agent_user: z.string().exactOptional(),
  github_repos: z.array(z.object({ owner: z.string(), repo: z.string() })),
  setup_commands: z.array(z.string()),
  maintenance_commands: z.array(z.string()),
  repos: z.array(z.object({ url: z.string(), branch: z.string().optional() })),
  env: z.record(z.string(), z.string()),
  network: z.enum(NETWORK_POLICIES),
  allow_domains: z.array(z.string()),
  allow_presets: z.array(z.string()),
  allow_internal_ranges: z.array(z.string()),
  secrets: z.array(z.string()),
  limits: limitsItemSchema,
  worker_host: z.string().exactOptional().meta({ description: "where its runs go when they name no worker_host: a worker's name or label; absent: any worker" }),
});

/** Ours: the environment's latest warm-start snapshot, as a worker reported it (docs/environments.md "Snapshots"). */
export const environmentSnapshotItemSchema = z
  .object({
    /** What the worker keyed it by (64 hex digits). */
    key: z.string(),
    size_bytes: z.number().int(),
    created_at: timestamp,
    hits: z.number().int(),
    last_used_at: timestamp,
  })
  .meta({ id: 'EnvironmentSnapshot' });

/** The spec's CloudEnvironment, plus our `snapshot` (null when no worker reported one). */
export const environmentItemSchema = z
  .object({
    uid: z.string(),
    config: environmentConfigItemSchema,
    last_updated: timestamp,
    setup_failed: z.boolean(),
    scope: scopeSchema,
    creator: creatorSchema.exactOptional(),
    snapshot: environmentSnapshotItemSchema.nullable(),
  })
  .meta({ id: 'CloudEnvironment' });

/** The spec's `sort_by` of `GET /agent/environments`: most recently updated first (default), or by name. */
export const ENVIRONMENT_SORTS = ['last_updated', 'name'] as const;
export const listEnvironmentsQuerySchema = z
  .object({ sort_by: z.enum(ENVIRONMENT_SORTS, { message: `must be one of ${ENVIRONMENT_SORTS.join(', ')}` }).default('last_updated') })
  .strict();

export const listEnvironmentsResponseSchema = z.object({ environments: z.array(environmentItemSchema) }).meta({ id: 'ListEnvironmentsResponse' });
export const deleteEnvironmentResponseSchema = successSchema;

export type LimitsItem = z.infer<typeof limitsItemSchema>;
export type EnvironmentSnapshotItem = z.infer<typeof environmentSnapshotItemSchema>;
export type EnvironmentItem = z.infer<typeof environmentItemSchema>;
export type ListEnvironmentsResponse = z.infer<typeof listEnvironmentsResponseSchema>;
