import type { ArtifactItem, RunAgentConfig, RunItem } from '../../api/runs.js';
import { toRfc3339 } from '../../core/clock.js';
import { LEASED_STATES, type RunState } from '../../core/run-state.js';
import { authSecretField, type HarnessType, type Run, type RunArtifact } from '../../core/run.js';

function presentArtifact(artifact: RunArtifact): ArtifactItem {
  return { artifact_type: artifact.type, created_at: toRfc3339(artifact.createdAt), data: artifact.data };
}

/** The spec's RunItem, with our extensions `usage`, `state_timestamps`, `attempt`. */
export function presentRun(run: Run, artifacts: readonly RunArtifact[] = []): RunItem {
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
    ...(run.creatorId ? { creator: { type: 'user', uid: run.creatorId } } : {}),
    agent_config: agentConfig,
    conversation_id: run.id,
    artifacts: artifacts.map(presentArtifact),
    ...(run.parentRunId ? { parent_run_id: run.parentRunId } : {}),
    is_sandbox_running: LEASED_STATES.includes(run.state),
    scope: { type: 'Team', uid: run.teamId },
    // ours
    usage: run.usage ?? { input_tokens: 0, output_tokens: 0, steps: 0 },
    state_timestamps: stateTimestamps,
    attempt: run.attempt,
    ...(run.cancelRequestedAt !== null ? { cancel_requested_at: toRfc3339(run.cancelRequestedAt) } : {}),
  };
}
