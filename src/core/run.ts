import type { NetworkAudit } from './network-audit.js';
import type { PlatformErrorCode } from './errors.js';
import type { RunState } from './run-state.js';

/** The spec's RunSourceType. */
export const RUN_SOURCES = ['LINEAR', 'API', 'SLACK', 'LOCAL', 'SCHEDULED_AGENT', 'WEB_APP', 'GITHUB_ACTION', 'CLOUD_MODE', 'CLI'] as const;
export type RunSource = (typeof RUN_SOURCES)[number];

export const EXECUTION_LOCATIONS = ['LOCAL', 'REMOTE'] as const;
export type ExecutionLocation = (typeof EXECUTION_LOCATIONS)[number];

export const HARNESS_TYPES = ['oz', 'claude', 'codex', 'command'] as const;
export type HarnessType = (typeof HARNESS_TYPES)[number];

export interface HarnessConfig {
  type: HarnessType;
  /** For `command`: the executable and its arguments, run as a shell command line. */
  command?: string;
}

/** What the run was asked to do, beyond the prompt. Stored as JSON. */
export interface RunConfig {
  /** The spec's `agent_config.name`: a label for grouping and filtering. */
  name?: string;
  /** The run's `model_id` as it was given (a catalog id, `auto` or provider/model), echoed back in `agent_config.model_id`. */
  modelId?: string;
  /**
   * What `modelId` resolved to at creation (`provider/model`, src/core/model-catalog.ts), what the
   * worker calls; absent for `auto` with no default configured (the harness's own default), and
   * on runs stored before the catalog, whose `modelId` was always provider/model.
   */
  model?: string;
  harness: HarnessConfig;
  /** A run's own secret allowlist; absent means "the environment's". */
  secrets?: string[];
  maxRuntimeMs?: number;
  /** Budgets of an agent harness (`oz`); absent = the worker's defaults. */
  maxSteps?: number;
  maxTokens?: number;
  /**
   * Per harness type, the secret whose value authenticates that harness's CLI
   * (the API's `harness_auth_secrets`, `<type>_auth_secret_name`); a run uses
   * the entry of its own harness.
   */
  harnessAuthSecrets?: Partial<Record<HarnessType, string>>;
  /**
   * `false`: a cold start (the API's `config.snapshot: false`): setup runs even
   * when the environment has a snapshot. Stored only when false; absent = the
   * worker may start from a snapshot (docs/environments.md "Snapshots").
   */
  snapshot?: false;
  /**
   * The API's `config.worker_host`: the name or label of the workers that may
   * claim the run (docs/api.md "Worker pools"). Absent = any worker (`warp`,
   * Oz's hosted value, is stored as absent).
   */
  workerHost?: string;
  /** Oz's `idle_timeout_minutes`: the sandbox stays alive this long after an execution ends (0: torn down at once); absent: the deployment's default. */
  idleTimeoutMinutes?: number;
  /** Per repository of the environment (its URL), the branch or commit the run starts from (`config.branches`). */
  branches?: Record<string, string>;
}

/** The API's `harness_auth_secrets` field of a harness type. */
export function authSecretField(type: HarnessType): string {
  return `${type}_auth_secret_name`;
}

/** The API's `harness_auth_secrets` (`{ claude_auth_secret_name: … }`) as secret names per harness type. */
export function authSecretsByType(fields: Readonly<Record<string, string | undefined>>): Partial<Record<HarnessType, string>> {
  const byType: Partial<Record<HarnessType, string>> = {};
  for (const type of HARNESS_TYPES) {
    const name = fields[authSecretField(type)];
    if (name !== undefined) byType[type] = name;
  }
  return byType;
}

/** The spec's RunStatusMessage plus our `reason`. */
export interface RunStatusMessage {
  message: string;
  error_code?: PlatformErrorCode | undefined;
  retryable?: boolean | undefined;
  reason?: string | undefined;
}

export interface RunUsage {
  input_tokens: number;
  output_tokens: number;
  steps: number;
}

export interface ScheduleRef {
  scheduleId: string;
  scheduleName: string;
  cronSchedule: string;
}

/** A run as the domain sees it. Timestamps are epoch milliseconds. */
export interface Run {
  id: string;
  teamId: string;
  creatorId: string | null;
  title: string;
  prompt: string;
  source: RunSource;
  executionLocation: ExecutionLocation;
  state: RunState;
  environmentId: string | null;
  schedule: ScheduleRef | null;
  parentRunId: string | null;
  skillSpec: string | null;
  config: RunConfig;
  attempt: number;
  workerId: string | null;
  /** The name of the worker that claimed it last (with `workerId`); null before a claim, or for a worker that sent none. */
  workerName: string | null;
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  cancelRequestedAt: number | null;
  statusMessage: RunStatusMessage | null;
  usage: RunUsage | null;
  /** What its network did, over all executions (src/core/network-audit.ts); null before an execution reported one. */
  networkAudit: NetworkAudit | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  /** When each state was last entered (the `state_timestamps` extension). */
  stateTimestamps: Partial<Record<RunState, number>>;
  /** Sequence number of the last event appended to this run (0 = none). */
  lastEventSeq: number;
  /** The number of its latest execution (1 until a follow-up to the ended run). */
  execution: number;
  /** The last follow-up its agent has been given (0: none). */
  followupsThrough: number;
  /** The worker keeping the ended run's sandbox alive for a follow-up, and until when (epoch ms); null: none. */
  idleWorkerId: string | null;
  idleUntil: number | null;
}

export const ARTIFACT_TYPES = ['PLAN', 'PULL_REQUEST', 'SCREENSHOT', 'FILE', 'BRANCH'] as const;
/** The spec's ArtifactItem types: a RunItem's `artifacts` holds only these (a strict `oneOf` decoder knows no others); ours go beside it. */
export const SPEC_ARTIFACT_TYPES = ['PLAN', 'PULL_REQUEST', 'SCREENSHOT', 'FILE'] as const satisfies readonly ArtifactType[];
export type ArtifactType = (typeof ARTIFACT_TYPES)[number];

/** Something a run produced (a pull request, a pushed branch), as the spec's ArtifactItem. */
export interface RunArtifact {
  runId: string;
  type: ArtifactType;
  data: Record<string, unknown>;
  createdAt: number;
}

export const RUN_SORT_FIELDS = ['updated_at', 'created_at', 'title', 'agent'] as const;
export type RunSortField = (typeof RUN_SORT_FIELDS)[number];
export type SortOrder = 'asc' | 'desc';

/** The spec's `GET /agent/runs` filters, already validated. */
export interface RunFilters {
  states?: RunState[] | undefined;
  name?: string | undefined;
  modelId?: string | undefined;
  creatorId?: string | undefined;
  source?: RunSource | undefined;
  executionLocation?: ExecutionLocation | undefined;
  createdAfter?: number | undefined;
  createdBefore?: number | undefined;
  updatedAfter?: number | undefined;
  environmentId?: string | undefined;
  skillSpec?: string | undefined;
  scheduleId?: string | undefined;
  ancestorRunId?: string | undefined;
  artifactType?: ArtifactType | undefined;
  query?: string | undefined;
}

export interface ListRunsQuery {
  teamId: string;
  filters: RunFilters;
  sortBy: RunSortField;
  sortOrder: SortOrder;
  limit: number;
  cursor?: string;
}

export interface RunPage {
  runs: Run[];
  /** Present when more rows may follow. */
  nextCursor: string | null;
}
