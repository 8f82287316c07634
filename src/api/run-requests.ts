import { z } from 'zod';
import { AUTO_MODEL, CATALOG_ID_PATTERN, PROVIDER_MODEL_PATTERN } from '../core/model-catalog.js';
import { RUN_STATES } from '../core/run-state.js';
import { ARTIFACT_TYPES, EXECUTION_LOCATIONS, HARNESS_TYPES, RUN_SORT_FIELDS, RUN_SOURCES } from '../core/run.js';
import { envName, rfc3339, maxRuntimeSeconds, workerHostSchema } from './common.js';

export const harnessSchema = z
  .object(
    {
      type: z.enum(HARNESS_TYPES, { message: `must be one of ${HARNESS_TYPES.join(', ')}` }),
      command: z.string().min(1).max(10_000).optional(),
    },
    { message: 'must be an object like {"type": "oz"} (a bare string is not accepted)' },
  )
  .strict()
  .refine((h) => h.type === 'command' || h.command === undefined, {
    message: 'command is only allowed with type "command"',
    path: ['command'],
  });

/**
 * A model id's form: Oz's catalog ids (`claude-4-6-opus-high`), `auto`, or our
 * `provider/model`. Whether a catalog id exists is the deployment's catalog's
 * business (the run service answers naming the field and what is allowed).
 */
export const modelIdSchema = z.string().refine((v) => v === AUTO_MODEL || CATALOG_ID_PATTERN.test(v) || PROVIDER_MODEL_PATTERN.test(v), {
  message: 'must be a model id of GET /agent/models (e.g. claude-4-6-opus-high), auto, or provider/model with provider anthropic, openai or openai-compatible',
});

/**
 * The spec's AmbientAgentConfig. Fields we do not implement yet are accepted by
 * the schema so the handler can answer `feature_not_available` naming them
 * (never silently ignored); unknown fields are a 400.
 */
export const agentConfigSchema = z
  .object({
    name: z.string().min(1).max(200).optional(),
    model_id: modelIdSchema.optional(),
    environment_id: z.string().min(1).max(200).optional(),
    harness: harnessSchema.optional(),
    // ours
    secrets: z.array(envName).max(100).optional(),
    max_runtime_seconds: maxRuntimeSeconds.optional(),
    max_steps: z.number().int().min(1).max(10_000).optional(),
    // the spec's claude_auth_secret_name, and ours for codex: the secret whose value is the CLI's key
    harness_auth_secrets: z.strictObject({ claude_auth_secret_name: envName.optional(), codex_auth_secret_name: envName.optional() }).optional(),
    max_tokens: z.number().int().min(1000).max(1_000_000_000).optional(),
    // false: a cold start, without the environment's snapshot (docs/environments.md "Snapshots"); absent or true: a warm start when one matches
    snapshot: z.boolean({ message: 'must be true or false' }).optional(),
    // the spec's, not implemented yet
    base_prompt: z.unknown().optional(),
    skill_spec: z.unknown().optional(),
    mcp_servers: z.unknown().optional(),
    computer_use_enabled: z.boolean().optional(),
    // Oz's field: keep the sandbox alive this long after an execution ends, for a follow-up (0: tear down at once)
    idle_timeout_minutes: z
      .number({ message: 'must be a whole number of minutes, 0..60' })
      .int('must be a whole number of minutes, 0..60')
      .min(0, 'must be 0..60')
      .max(60, 'must be 0..60')
      .optional(),
    // ours: per repository of the environment (its URL, owner/name or name), the branch or commit to start from
    branches: z
      .record(
        z.string().min(1).max(500),
        z
          .string()
          .min(1)
          .max(250)
          .regex(/^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/-]+(?<![./])$/, 'must be a branch name or a commit id (letters, digits, . _ / -)'),
      )
      .refine((v) => Object.keys(v).length <= 20, 'at most 20 repositories')
      .optional(),
    // the spec's: the name or label of the workers that may take the run (docs/api.md "Worker pools"); "warp" = any
    worker_host: workerHostSchema.optional(),
    // newer SDKs': picks a self-hosted runner, which is worker selection (like worker_host)
    runner_id: z.unknown().optional(),
  })
  .strict();

export const runAgentRequestSchema = z
  .object({
    // Optional as in the spec: a run may be a `skill` alone (answered feature_not_available until skills land); the run service requires one.
    prompt: z.string().trim().min(1, 'must not be empty').max(200_000).optional(),
    title: z.string().trim().min(1).max(200).optional(),
    config: agentConfigSchema.optional(),
    parent_run_id: z.string().min(1).max(200).optional(),
    team: z.boolean().optional(),
    interactive: z.boolean().optional(),
    // the spec's, not implemented yet
    skill: z.unknown().optional(),
    attachments: z.unknown().optional(),
    // continue that conversation (its id is its run's): a follow-up to that run
    conversation_id: z.string().min(1).max(200).optional(),
    agent_identity_uid: z.unknown().optional(),
    // the SDK's, not implemented yet: images with the prompt, and a run mode
    images: z.unknown().optional(),
    mode: z.unknown().optional(),
    // the SDK's free-form labels of a run: accepted and ignored (they change nothing a run does)
    metadata: z.unknown().optional(),
  })
  .strict();

export type RunAgentRequest = z.infer<typeof runAgentRequestSchema>;
/** What a client sends (before defaults and trimming). */
export type RunAgentRequestInput = z.input<typeof runAgentRequestSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

const stateList = z
  .union([z.enum(RUN_STATES), z.array(z.enum(RUN_STATES))], { message: `must be one or more of ${RUN_STATES.join(', ')}` })
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const listRunsQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1, 'must be 1..500').max(500, 'must be 1..500').default(20),
    cursor: z.string().min(1).max(2000).optional(),
    sort_by: z.enum(RUN_SORT_FIELDS).default('updated_at'),
    sort_order: z.enum(['asc', 'desc']).default('desc'),
    state: stateList.optional(),
    name: z.string().min(1).optional(),
    model_id: z.string().min(1).optional(),
    creator: z.string().min(1).optional(),
    source: z.enum(RUN_SOURCES).optional(),
    execution_location: z.enum(EXECUTION_LOCATIONS).optional(),
    created_after: rfc3339.optional(),
    created_before: rfc3339.optional(),
    updated_after: rfc3339.optional(),
    environment_id: z.string().min(1).optional(),
    skill: z.string().min(1).optional(),
    skill_spec: z.string().min(1).optional(),
    schedule_id: z.string().min(1).optional(),
    ancestor_run_id: z.string().min(1).optional(),
    artifact_type: z.enum(ARTIFACT_TYPES).optional(),
    q: z.string().min(1).max(500).optional(),
  })
  .strict();

export type ListRunsQueryParams = z.infer<typeof listRunsQuerySchema>;
