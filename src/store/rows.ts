import type { NetworkAudit } from '../core/network-audit.js';
import type { Selectable } from 'kysely';
import type { Environment, EnvironmentConfig, EnvironmentLimits, Scope } from '../core/environment.js';
import type { ApiKey, Team, User, UserRole, WorkerToken } from '../core/identity.js';
import type { RunEvent, RunEventType } from '../core/run-event.js';
import { RUN_STATES, type RunState } from '../core/run-state.js';
import type { ExecutionLocation, Run, RunConfig, RunSource, RunStatusMessage, RunUsage } from '../core/run.js';
import type { ApiKeysTable, EnvironmentsTable, RunEventsTable, RunsTable, TeamsTable, UsersTable, WorkerTokensTable } from './schema.js';

/** Rows → domain objects. The only place that knows the storage encoding. */

export type RunRow = Selectable<RunsTable>;

/** A bigint column that may be null (pg returns bigints as strings). */
export const numberOrNull = (value: number | string | null): number | null => (value === null ? null : Number(value));

/** Owner column (null or '' = the team) ↔ scope, for environments, secrets and schedules. */
export const scopeOfOwner = (owner: string | null): Scope => (owner ? { type: 'user', userId: owner } : { type: 'team' });
export const ownerOfScope = (scope: Scope): string | null => (scope.type === 'user' ? scope.userId : null);

/** The column holding the time a state was last entered: `inprogress_at`, … */
/**
 * A stored run config. Rows written before auth secrets were kept per
 * harness type hold `claudeAuthSecret` / `codexAuthSecret`; they read as the
 * same map, so a queued run keeps its secret across the upgrade.
 */
function runConfig(text: string): RunConfig {
  const { claudeAuthSecret, codexAuthSecret, ...config } = JSON.parse(text) as RunConfig & { claudeAuthSecret?: string; codexAuthSecret?: string };
  if (claudeAuthSecret === undefined && codexAuthSecret === undefined) return config;
  return {
    ...config,
    harnessAuthSecrets: {
      ...(claudeAuthSecret !== undefined ? { claude: claudeAuthSecret } : {}),
      ...(codexAuthSecret !== undefined ? { codex: codexAuthSecret } : {}),
      ...config.harnessAuthSecrets,
    },
  };
}

export function stateColumn(state: RunState): `${Lowercase<RunState>}_at` {
  return `${state.toLowerCase() as Lowercase<RunState>}_at`;
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function toRun(row: RunRow): Run {
  const stateTimestamps: Partial<Record<RunState, number>> = {};
  for (const state of RUN_STATES) {
    const at = row[stateColumn(state)];
    if (at !== null) stateTimestamps[state] = Number(at);
  }
  return {
    id: row.id,
    teamId: row.team_id,
    creatorId: row.creator_id,
    title: row.title,
    prompt: row.prompt,
    source: row.source as RunSource,
    executionLocation: row.execution_location as ExecutionLocation,
    state: row.state as RunState,
    environmentId: row.environment_id,
    schedule: row.schedule_id === null ? null : { scheduleId: row.schedule_id, scheduleName: row.schedule_name ?? '', cronSchedule: row.schedule_cron ?? '' },
    parentRunId: row.parent_run_id,
    skillSpec: row.skill_spec,
    config: runConfig(row.config),
    attempt: Number(row.attempt),
    workerId: row.worker_id,
    workerName: row.worker_name,
    leaseToken: row.lease_token,
    leaseExpiresAt: numberOrNull(row.lease_expires_at),
    cancelRequestedAt: numberOrNull(row.cancel_requested_at),
    statusMessage: parseJson<RunStatusMessage>(row.status_message),
    usage: parseJson<RunUsage>(row.usage),
    networkAudit: parseJson<NetworkAudit>(row.network_audit),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: numberOrNull(row.started_at),
    stateTimestamps,
    lastEventSeq: Number(row.last_event_seq),
    execution: Number(row.execution ?? 1),
    followupsThrough: Number(row.followups_through ?? 0),
    idleWorkerId: row.idle_worker_id ?? null,
    idleUntil: numberOrNull(row.idle_until ?? null),
  };
}

export function toTeam(row: Selectable<TeamsTable>): Team {
  return {
    id: row.id,
    name: row.name,
    maxConcurrentRuns: Number(row.max_concurrent_runs),
    limitCeilings: row.limit_ceilings ? (JSON.parse(row.limit_ceilings) as EnvironmentLimits) : {},
    platform: Number(row.platform) === 1,
    createdAt: Number(row.created_at),
  };
}

export function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    teamId: row.team_id,
    email: row.email,
    displayName: row.display_name,
    role: row.role as UserRole,
    createdAt: Number(row.created_at),
  };
}

export function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    teamId: row.team_id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    createdAt: Number(row.created_at),
    expiresAt: numberOrNull(row.expires_at),
    lastUsedAt: numberOrNull(row.last_used_at),
  };
}

export function toEnvironment(row: Selectable<EnvironmentsTable>): Environment {
  return {
    id: row.id,
    teamId: row.team_id,
    scope: scopeOfOwner(row.owner_user_id),
    creatorId: row.creator_id,
    updatedBy: row.updated_by,
    name: row.name,
    description: row.description,
    config: JSON.parse(row.config) as EnvironmentConfig,
    setupFailed: Number(row.setup_failed) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export function toRunEvent(row: Selectable<RunEventsTable>): RunEvent {
  return {
    runId: row.run_id,
    seq: Number(row.seq),
    type: row.type as RunEventType,
    at: Number(row.at),
    data: JSON.parse(row.data) as Record<string, unknown>,
  };
}

export function toWorkerToken(row: Selectable<WorkerTokensTable>): WorkerToken {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    revokedAt: numberOrNull(row.revoked_at),
    lastUsedAt: numberOrNull(row.last_used_at),
  };
}
