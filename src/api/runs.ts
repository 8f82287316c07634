import { z } from 'zod';
import { PLATFORM_ERROR_CODES } from '../core/errors.js';
import { RUN_STATES } from '../core/run-state.js';
import { EXECUTION_LOCATIONS, HARNESS_TYPES, RUN_SOURCES, SPEC_ARTIFACT_TYPES } from '../core/run.js';
import { creatorSchema, scopeSchema, timestamp } from './common.js';

/** A harness as responses show it (the request's `harnessSchema` without its checks). */
export const harnessItemSchema = z.object({ type: z.enum(HARNESS_TYPES), command: z.string().exactOptional() });

/**
 * The fields of an AmbientAgentConfig in responses: the spec's and ours
 * (`secrets`, `max_runtime_seconds`, `max_steps`, `max_tokens`,
 * `harness_auth_secrets` with `<harness>_auth_secret_name` keys, and
 * `snapshot`: false for a cold start).
 */
const agentConfigFields = {
  name: z.string(),
  model_id: z.string(),
  environment_id: z.string(),
  skill_spec: z.string(),
  secrets: z.array(z.string()),
  max_runtime_seconds: z.number().int(),
  max_steps: z.number().int(),
  max_tokens: z.number().int(),
  harness_auth_secrets: z.record(z.string(), z.string()),
  snapshot: z.boolean(),
  worker_host: z.string().meta({ description: 'the name or label of the workers that may take the run; absent: any worker' }),
  idle_timeout_minutes: z.number().int().meta({ description: 'how long the sandbox stays alive after an execution ends, for a follow-up' }),
  branches: z.record(z.string(), z.string()).meta({ description: 'per repository of the environment, the branch or commit the run starts from' }),
};

/** A run's `agent_config`, as the presenter builds it from the run's stored config: its harness is always set. */
export const runAgentConfigSchema = z.object({
  harness: harnessItemSchema,
  name: agentConfigFields.name.exactOptional(),
  model_id: agentConfigFields.model_id.exactOptional(),
  environment_id: agentConfigFields.environment_id.exactOptional(),
  skill_spec: agentConfigFields.skill_spec.exactOptional(),
  secrets: agentConfigFields.secrets.exactOptional(),
  max_runtime_seconds: agentConfigFields.max_runtime_seconds.exactOptional(),
  max_steps: agentConfigFields.max_steps.exactOptional(),
  max_tokens: agentConfigFields.max_tokens.exactOptional(),
  harness_auth_secrets: agentConfigFields.harness_auth_secrets.exactOptional(),
  snapshot: agentConfigFields.snapshot.exactOptional(),
  worker_host: agentConfigFields.worker_host.exactOptional(),
  idle_timeout_minutes: agentConfigFields.idle_timeout_minutes.exactOptional(),
  branches: agentConfigFields.branches.exactOptional(),
});

/**
 * A schedule's `agent_config`: its template as the request gave it (validated
 * then), so every field is optional and the spec's fields we do not
 * implement pass through as they are.
 */
export const templateAgentConfigSchema = z.looseObject({
  name: agentConfigFields.name.optional(),
  model_id: agentConfigFields.model_id.optional(),
  environment_id: agentConfigFields.environment_id.optional(),
  harness: harnessItemSchema.optional(),
  secrets: agentConfigFields.secrets.optional(),
  max_runtime_seconds: agentConfigFields.max_runtime_seconds.optional(),
  max_steps: agentConfigFields.max_steps.optional(),
  harness_auth_secrets: agentConfigFields.harness_auth_secrets.optional(),
  max_tokens: agentConfigFields.max_tokens.optional(),
  snapshot: agentConfigFields.snapshot.optional(),
  worker_host: agentConfigFields.worker_host.optional(),
  idle_timeout_minutes: agentConfigFields.idle_timeout_minutes.optional(),
  branches: agentConfigFields.branches.optional(),
});

/** The spec's RunStatusMessage plus our `reason`. */
export const runStatusMessageSchema = z.object({
  message: z.string(),
  error_code: z.enum(PLATFORM_ERROR_CODES).optional(),
  retryable: z.boolean().optional(),
  reason: z.string().optional(),
});

/**
 * The spec's ArtifactItem (`PULL_REQUEST {url, branch}`, …); `data` as the worker reported it.
 * Only the spec's types: a client decoding the spec's `oneOf` strictly fails on any other,
 * so our pushed branches are `branches` beside it.
 */
export const artifactItemSchema = z.object({
  artifact_type: z.enum(SPEC_ARTIFACT_TYPES),
  created_at: timestamp,
  data: z.record(z.string(), z.unknown()),
});

/** Ours: a branch a run pushed without a pull request (a `BRANCH` artifact, filterable with `artifact_type=BRANCH`). */
export const branchItemSchema = z.object({ branch: z.string(), repository: z.string(), created_at: timestamp });

/** The spec's RequestUsage: costs in the deployment's currency; a self-hosted server knows no prices, so both are absent (tokens are in `usage`). */
export const requestUsageSchema = z.object({ inference_cost: z.number().exactOptional(), compute_cost: z.number().exactOptional() }).meta({ id: 'RequestUsage' });

/** The spec's AgentSkill: the skill a run ran (`skill` / `config.skill_spec`). */
export const agentSkillSchema = z
  .object({ name: z.string().exactOptional(), description: z.string().exactOptional(), full_path: z.string().exactOptional(), bundled_skill_id: z.string().exactOptional() })
  .meta({ id: 'AgentSkill' });

/** Tokens and model calls a run used (ours). */
export const runUsageSchema = z.object({ input_tokens: z.number().int(), output_tokens: z.number().int(), steps: z.number().int() });

/** One execution of a run (ours): the run's creation starts the first, each follow-up to the ended run the next. */
export const executionItemSchema = z
  .object({
    number: z.number().int(),
    state: z.enum(RUN_STATES),
    created_at: timestamp,
    claimed_at: timestamp.nullable(),
    started_at: timestamp.nullable(),
    ended_at: timestamp.nullable(),
    worker: z.object({ id: z.string(), name: z.string().nullable() }).nullable(),
    status_message: runStatusMessageSchema.exactOptional(),
    usage: runUsageSchema.nullable(),
  })
  .meta({ id: 'RunExecution' });

/** The spec's RunItem, with our extensions `usage`, `branches`, `state_timestamps`, `attempt`, `cancel_requested_at` and `worker`. */
export const runItemSchema = z
  .object({
    run_id: z.string(),
    task_id: z.string().meta({ deprecated: true, description: 'the same as run_id' }),
    title: z.string(),
    state: z.enum(RUN_STATES),
    execution_location: z.enum(EXECUTION_LOCATIONS),
    prompt: z.string(),
    created_at: timestamp,
    updated_at: timestamp,
    started_at: timestamp.nullable(),
    status_message: runStatusMessageSchema.exactOptional(),
    source: z.enum(RUN_SOURCES),
    schedule: z.object({ schedule_id: z.string(), schedule_name: z.string(), cron_schedule: z.string() }).exactOptional(),
    session_link: z.string().meta({ description: 'where a person opens the run: <server>/runs/<run_id>, the server as the request reached it' }),
    trigger_url: z.string().exactOptional().meta({ description: "what triggered the run: a scheduled run's schedule (its API URL); absent for runs made directly" }),
    creator: creatorSchema.exactOptional(),
    request_usage: requestUsageSchema,
    agent_config: runAgentConfigSchema,
    conversation_id: z.string(),
    artifacts: z.array(artifactItemSchema),
    agent_skill: agentSkillSchema.exactOptional(),
    parent_run_id: z.string().exactOptional(),
    is_sandbox_running: z.boolean().meta({ description: 'a worker holds the run (CLAIMED, INPROGRESS or BLOCKED) under a lease that has not expired' }),
    scope: scopeSchema,
    usage: runUsageSchema,
    branches: z.array(branchItemSchema),
    state_timestamps: z.partialRecord(z.enum(RUN_STATES), timestamp).meta({ description: 'when the run last entered each state it has been in' }),
    attempt: z.number().int().meta({ description: 'how many times a worker claimed the run' }),
    cancel_requested_at: timestamp.exactOptional(),
    worker: z
      .object({ id: z.string(), name: z.string().nullable() })
      .exactOptional()
      .meta({ description: 'the worker that claimed the run last (its name is null for a worker that sent none); absent before any claim' }),
    execution: z.number().int().meta({ description: "the number of the run's latest execution (1 until a follow-up to the ended run)" }),
    executions: z.array(executionItemSchema).meta({ description: "the run's executions, oldest first; the run's state is the last one's" }),
  })
  .meta({ id: 'RunItem' });

/** The patches of a run's changes (`GET /agent/runs/{id}/diff`, ours), per repository. */
export const runDiffResponseSchema = z
  .object({
    diffs: z.array(
      z.object({
        repository: z.string(),
        execution: z.number().int().meta({ description: 'the execution that published it last' }),
        base: z.string().meta({ description: "the commit the run's first execution started on" }),
        head: z.string().meta({ description: 'the commit it published' }),
        patch: z.string().meta({ description: 'as git diff prints it, cut to 1 MiB' }),
        bytes: z.number().int().meta({ description: 'the whole patch, before any cut' }),
        truncated: z.boolean(),
        created_at: timestamp,
      }),
    ),
  })
  .meta({ id: 'RunDiffResponse' });
export type RunDiffResponse = z.infer<typeof runDiffResponseSchema>;

const auditCountsItem = { connections: z.number(), denied: z.number(), bytes_sent: z.number(), bytes_received: z.number() };

/** Ours: what a run's network did over all its executions (docs/network.md "Audit"); `policy` null before an execution reported. */
export const runNetworkResponseSchema = z
  .object({
    run_id: z.string(),
    policy: z.enum(['off', 'allowlist', 'on']).nullable(),
    hosts: z.array(z.object({ host: z.string(), port: z.number(), ...auditCountsItem, denied_reason: z.string().exactOptional() })),
    other: z.object(auditCountsItem),
  })
  .meta({ id: 'RunNetwork' });
export type RunNetworkResponse = z.infer<typeof runNetworkResponseSchema>;

/** A follow-up message to a run (`POST /agent/runs/{id}/followups`). */
export const followupRequestSchema = z
  .object({
    message: z.string({ message: 'is required: the text of the follow-up' }).trim().min(1, 'must not be empty').max(200_000, 'must be at most 200000 characters'),
    attachments: z.unknown().optional(),
  })
  .strict();

export const followupResponseSchema = z
  .object({
    run_id: z.string(),
    followup: z.object({ seq: z.number().int(), created_at: timestamp }),
    execution: z.number().int(),
    state: z.enum(RUN_STATES),
    delivery: z.enum(['with_start', 'running', 'new_execution']).meta({
      description:
        'with_start: the agent has not started and gets it with the prompt; running: it reaches the running agent at its next step; new_execution: the run had ended and continues in a new execution',
    }),
  })
  .meta({ id: 'FollowupResponse' });

export const listRunsResponseSchema = z
  .object({
    runs: z.array(runItemSchema),
    page_info: z.object({ has_next_page: z.boolean(), next_cursor: z.string().exactOptional() }),
  })
  .meta({ id: 'ListRunsResponse' });

/** The spec's RunAgentResponse (also what a schedule's run-now answers). */
export const runAgentResponseSchema = z
  .object({
    run_id: z.string(),
    task_id: z.string().meta({ deprecated: true, description: 'the same as run_id' }),
    state: z.enum(RUN_STATES),
    at_capacity: z.boolean().meta({ description: "true when the run was queued behind the team's concurrency limit" }),
  })
  .meta({ id: 'RunAgentResponse' });

/** A cancel answers the run's id as a JSON string. */
export const cancelRunResponseSchema = z.string().meta({ description: 'the id of the run' });

export type RunItem = z.infer<typeof runItemSchema>;
export type ExecutionItem = z.infer<typeof executionItemSchema>;
export type FollowupResponse = z.infer<typeof followupResponseSchema>;
export type RunAgentConfig = z.infer<typeof runAgentConfigSchema>;
export type TemplateAgentConfig = z.infer<typeof templateAgentConfigSchema>;
export type RunStatusMessageItem = z.infer<typeof runStatusMessageSchema>;
export type ArtifactItem = z.infer<typeof artifactItemSchema>;
export type BranchItem = z.infer<typeof branchItemSchema>;
export type AgentSkillItem = z.infer<typeof agentSkillSchema>;
export type ListRunsResponse = z.infer<typeof listRunsResponseSchema>;
export type RunAgentResponse = z.infer<typeof runAgentResponseSchema>;
