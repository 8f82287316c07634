import type { AgentSkillItem, ArtifactItem, BranchItem, ExecutionItem, RunAgentConfig, RunItem } from '../../api/runs.js';
import type { RunExecution } from '../../core/execution.js';
import { toRfc3339 } from '../../core/clock.js';
import { LEASED_STATES, type RunState } from '../../core/run-state.js';
import { authSecretField, SPEC_ARTIFACT_TYPES, type HarnessType, type Run, type RunArtifact } from '../../core/run.js';

/** What a RunItem needs beyond the run: where the server is, as its caller reached it, and the time (is the lease live?). */
export interface RunPresentation {
  /** `<protocol>://<host>` of the request (src/server/public-url.ts). */
  baseUrl: string;
  now: number;
}

type SpecArtifactType = (typeof SPEC_ARTIFACT_TYPES)[number];
const isSpecArtifact = (artifact: RunArtifact): artifact is RunArtifact & { type: SpecArtifactType } => (SPEC_ARTIFACT_TYPES as readonly string[]).includes(artifact.type);

function presentArtifact(artifact: RunArtifact & { type: SpecArtifactType }): ArtifactItem {
  return { artifact_type: artifact.type, created_at: toRfc3339(artifact.createdAt), data: artifact.data };
}

function presentBranch(artifact: RunArtifact): BranchItem {
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  return { branch: text(artifact.data.branch), repository: text(artifact.data.repository), created_at: toRfc3339(artifact.createdAt) };
}

/** The spec's AgentSkill of a skill spec (`owner/repo:path/SKILL.md` is a file; a bare id is a bundled skill). */
export function presentSkill(skillSpec: string): AgentSkillItem {
  const path = skillSpec.includes(':') ? skillSpec.slice(skillSpec.indexOf(':') + 1) : null;
  if (path === null) return { name: skillSpec, bundled_skill_id: skillSpec };
  const parts = path.split('/').filter((p) => p.length > 0);
  const name = parts.length > 1 && /^skill\.md$/i.test(parts[parts.length - 1] ?? '') ? parts[parts.length - 2] : parts[parts.length - 1];
  return { name: name ?? path, full_path: path };
}

/**
 * The spec's RunItem, with our extensions `usage`, `branches`, `state_timestamps`, `attempt`, `worker`.
 * A worker holds the sandbox while it holds the lease: `is_sandbox_running` is a leased state
 * under a lease not yet expired (a lost worker's run stops counting the moment its lease lapses).
 */
function presentExecution(e: RunExecution): ExecutionItem {
  const time = (v: number | null): string | null => (v === null ? null : toRfc3339(v));
  return {
    number: e.number,
    state: e.state,
    created_at: toRfc3339(e.createdAt),
    claimed_at: time(e.claimedAt),
    started_at: time(e.startedAt),
    ended_at: time(e.endedAt),
    worker: e.workerId !== null ? { id: e.workerId, name: e.workerName } : null,
    ...(e.statusMessage ? { status_message: e.statusMessage } : {}),
    usage: e.usage,
  };
}

export function presentRun(run: Run, artifacts: readonly RunArtifact[], at: RunPresentation, executions: readonly RunExecution[] = []): RunItem {
  const stateTimestamps: Partial<Record<RunState, string>> = {};
  for (const [state, at] of Object.entries(run.stateTimestamps) as [RunState, number][]) {
    stateTimestamps[state] = toRfc3339(at);
  }
  const agentConfig: RunAgentConfig = { harness: run.config.harness };
  if (run.config.name !== undefined) agentConfig.name = run.config.name;
  if (run.config.modelId !== undefined) agentConfig.model_id = run.config.modelId;
  if (run.environmentId !== null) agentConfig.environment_id = run.environmentId;
  if (run.skillSpec !== null) agentConfig.skill_spec = run.skillSpec;
  if (run.config.secrets !== undefined) agentConfig.secrets = run.config.secrets;
  if (run.config.maxRuntimeMs !== undefined) agentConfig.max_runtime_seconds = Math.round(run.config.maxRuntimeMs / 1000);
  if (run.config.maxSteps !== undefined) agentConfig.max_steps = run.config.maxSteps;
  if (run.config.maxTokens !== undefined) agentConfig.max_tokens = run.config.maxTokens;
  if (run.config.snapshot === false) agentConfig.snapshot = false;
  if (run.config.workerHost !== undefined) agentConfig.worker_host = run.config.workerHost;
  if (run.config.idleTimeoutMinutes !== undefined) agentConfig.idle_timeout_minutes = run.config.idleTimeoutMinutes;
  if (run.config.branches !== undefined) agentConfig.branches = run.config.branches;
  const authSecrets = Object.entries(run.config.harnessAuthSecrets ?? {});
  if (authSecrets.length > 0) agentConfig.harness_auth_secrets = Object.fromEntries(authSecrets.map(([type, name]) => [authSecretField(type as HarnessType), name]));

  return {
    run_id: run.id,
    task_id: run.id,
    title: run.title,
    state: run.state,
    execution_location: run.executionLocation,
    prompt: run.prompt,
    created_at: toRfc3339(run.createdAt),
    updated_at: toRfc3339(run.updatedAt),
    started_at: run.startedAt === null ? null : toRfc3339(run.startedAt),
    ...(run.statusMessage ? { status_message: run.statusMessage } : {}),
    source: run.source,
    ...(run.schedule
      ? {
          schedule: {
            schedule_id: run.schedule.scheduleId,
            schedule_name: run.schedule.scheduleName,
            cron_schedule: run.schedule.cronSchedule,
          },
        }
      : {}),
    session_link: `${at.baseUrl}/runs/${encodeURIComponent(run.id)}`,
    ...(run.schedule ? { trigger_url: `${at.baseUrl}/api/v1/agent/schedules/${encodeURIComponent(run.schedule.scheduleId)}` } : {}),
    ...(run.creatorId ? { creator: { type: 'user', uid: run.creatorId } } : {}),
    request_usage: {},
    agent_config: agentConfig,
    conversation_id: run.id,
    artifacts: artifacts.filter(isSpecArtifact).map(presentArtifact),
    ...(run.skillSpec !== null ? { agent_skill: presentSkill(run.skillSpec) } : {}),
    ...(run.parentRunId ? { parent_run_id: run.parentRunId } : {}),
    // Or kept alive after the execution ended, for a follow-up.
    is_sandbox_running: (LEASED_STATES.includes(run.state) && run.leaseExpiresAt !== null && run.leaseExpiresAt > at.now) || (run.idleUntil !== null && run.idleUntil > at.now),
    scope: { type: 'Team', uid: run.teamId },
    // ours
    usage: run.usage ?? { input_tokens: 0, output_tokens: 0, steps: 0 },
    branches: artifacts.filter((a) => a.type === 'BRANCH').map(presentBranch),
    state_timestamps: stateTimestamps,
    attempt: run.attempt,
    ...(run.cancelRequestedAt !== null ? { cancel_requested_at: toRfc3339(run.cancelRequestedAt) } : {}),
    // Kept after the run ends; a re-queued run (PENDING again) has none until the next claim.
    ...(run.workerId !== null ? { worker: { id: run.workerId, name: run.workerName } } : {}),
    execution: run.execution,
    executions: executions.filter((e) => e.runId === run.id).map(presentExecution),
  };
}
