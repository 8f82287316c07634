import type { AgentConfigInput } from '../../../../src/api/run-requests.js';
import type { TemplateAgentConfig } from '../../../../src/api/runs.js';
import type { CreateScheduleInput, ScheduleItem, UpdateScheduleInput } from '../../../../src/api/schedules.js';
import { authSecretField, type HarnessType } from '../../../../src/core/run.js';
import type { OverlapPolicy } from '../../../../src/core/schedule.js';

/** The schedule form as typed; numbers stay text until submit, for the API to judge. */
export interface ScheduleForm {
  name: string;
  cron: string;
  timezone: string;
  overlap: OverlapPolicy;
  enabled: boolean;
  /** Create only: team-wide (true) or personal. */
  team: boolean;
  prompt: string;
  environment: string;
  harness: HarnessType;
  command: string;
  /** `harness_auth_secrets`, both kept whichever harness is picked. */
  claudeSecret: string;
  codexSecret: string;
  model: string;
  secrets: string;
  maxSteps: string;
  maxTokens: string;
  maxRuntime: string;
  idleTimeout: string;
  workerHost: string;
  snapshot: boolean;
}

/** What each overlap policy does (docs/schedules.md "Overlap policy"). */
export const OVERLAP_LABELS: Record<OverlapPolicy, string> = {
  allow: 'Allow: start the new run anyway',
  skip: 'Skip: drop the slot',
  queue: 'Queue: run it when the going run ends (at most one waits)',
  cancel_previous: 'Cancel the previous run and start the new one',
};

/** The harnesses whose key a secret named in `harness_auth_secrets` may give. */
export const hasAuthSecret = (harness: HarnessType): harness is 'claude' | 'codex' => harness === 'claude' || harness === 'codex';

const text = (n: number | undefined): string => (n === undefined ? '' : String(n));

export function formOf(schedule?: ScheduleItem): ScheduleForm {
  const ac: TemplateAgentConfig = schedule?.agent_config ?? {};
  const harness = ac.harness?.type ?? 'oz';
  return {
    name: schedule?.name ?? '',
    cron: schedule?.cron_schedule ?? '',
    timezone: schedule?.timezone ?? 'UTC',
    overlap: schedule?.overlap_policy ?? 'allow',
    enabled: schedule?.enabled ?? true,
    team: schedule ? schedule.scope.type === 'Team' : true,
    prompt: schedule?.prompt ?? '',
    environment: ac.environment_id ?? '',
    harness,
    command: ac.harness?.command ?? '',
    claudeSecret: ac.harness_auth_secrets?.[authSecretField('claude')] ?? '',
    codexSecret: ac.harness_auth_secrets?.[authSecretField('codex')] ?? '',
    model: ac.model_id ?? '',
    secrets: (ac.secrets ?? []).join(', '),
    maxSteps: text(ac.max_steps),
    maxTokens: text(ac.max_tokens),
    maxRuntime: text(ac.max_runtime_seconds),
    idleTimeout: text(ac.idle_timeout_minutes),
    workerHost: ac.worker_host ?? '',
    snapshot: ac.snapshot !== false,
  };
}

const num = (value: string): number | undefined => (value.trim() === '' ? undefined : Number(value));

/**
 * The template's `agent_config`: the form's fields, over what the form does
 * not show of the current one (`name`, `branches`), which a PUT would
 * otherwise drop.
 */
function agentConfigOf(f: ScheduleForm, current: TemplateAgentConfig = {}): AgentConfigInput {
  // A command harness without a command runs the prompt as its script.
  const config: AgentConfigInput = { harness: f.harness === 'command' && f.command.trim() ? { type: 'command', command: f.command } : { type: f.harness } };
  if (current.name !== undefined) config.name = current.name;
  if (current.branches !== undefined) config.branches = current.branches;
  const auth: { claude_auth_secret_name?: string; codex_auth_secret_name?: string } = {};
  if (f.claudeSecret.trim()) auth.claude_auth_secret_name = f.claudeSecret.trim();
  if (f.codexSecret.trim()) auth.codex_auth_secret_name = f.codexSecret.trim();
  if (Object.keys(auth).length > 0) config.harness_auth_secrets = auth;
  if (f.environment) config.environment_id = f.environment;
  if (f.model) config.model_id = f.model;
  const secrets = f.secrets.split(/[\s,]+/).filter(Boolean);
  if (secrets.length > 0) config.secrets = secrets;
  const steps = num(f.maxSteps);
  if (steps !== undefined) config.max_steps = steps;
  const tokens = num(f.maxTokens);
  if (tokens !== undefined) config.max_tokens = tokens;
  const runtime = num(f.maxRuntime);
  if (runtime !== undefined) config.max_runtime_seconds = runtime;
  const idle = num(f.idleTimeout);
  if (idle !== undefined) config.idle_timeout_minutes = idle;
  if (f.workerHost.trim()) config.worker_host = f.workerHost.trim();
  if (!f.snapshot) config.snapshot = false;
  return config;
}

export function createBody(f: ScheduleForm): CreateScheduleInput {
  return {
    name: f.name,
    cron_schedule: f.cron,
    prompt: f.prompt,
    enabled: f.enabled,
    team: f.team,
    overlap_policy: f.overlap,
    ...(f.timezone.trim() ? { timezone: f.timezone.trim() } : {}),
    agent_config: agentConfigOf(f),
  };
}

/** PUT replaces the schedule: every field goes (an empty time zone keeps the current one). */
export function replaceBody(f: ScheduleForm, current: ScheduleItem): UpdateScheduleInput {
  return {
    name: f.name,
    cron_schedule: f.cron,
    prompt: f.prompt,
    enabled: f.enabled,
    overlap_policy: f.overlap,
    ...(f.timezone.trim() ? { timezone: f.timezone.trim() } : {}),
    agent_config: agentConfigOf(f, current.agent_config),
  };
}
