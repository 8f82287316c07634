import type { EnvironmentConfig, RunLimits } from './environment.js';
import type { RunEventType } from './run-event.js';
import type { HarnessConfig, RunStatusMessage, RunUsage } from './run.js';
import type { NetworkPolicy } from './environment.js';
import type { NetworkAudit } from './network-audit.js';

/**
 * The worker protocol (docs/design.md "Architecture"): the only way a worker talks
 * to the platform, over HTTP with a worker token, under `/api/v1/worker`.
 * Workers never touch the database.
 *
 *   POST /claim                      long-poll: lease up to `max_runs` runs
 *   POST /runs/{id}/start            CLAIMED → INPROGRESS (the harness started)
 *   POST /runs/{id}/heartbeat        renew the lease; tells of a cancel request
 *   GET  /runs/{id}/control          long-poll: returns the moment a cancel is requested
 *   POST /runs/{id}/events           a numbered batch of events (idempotent on retry)
 *   POST /runs/{id}/finish           the terminal state and its status message
 *   POST /runs/{id}/followups/delivered   the agent has the follow-ups through a number
 *   GET  /runs/{id}/history          the conversation of the run's earlier executions
 *   PUT  /runs/{id}/workspace        the workspace the execution leaves (a tar, bounded)
 *   GET  /runs/{id}/workspace        the workspace the last execution left
 *   POST /runs/{id}/idle/release     the ended execution's idle sandbox is gone
 *   POST /runs/{id}/diffs            the patches of the run's changes it published
 *   POST /idle                       which of this worker's idle sandboxes it may keep
 *
 * Every per-run call carries the lease token; a stale one gets 409.
 * The server validates and encodes these bodies with the zod schemas of
 * src/api/worker-protocol.ts, which are checked to match these types.
 */
export const WORKER_API = '/api/v1/worker';

export interface ClaimRequest {
  worker_id: string;
  max_runs: number;
  wait_ms: number;
  /**
   * Who claims (docs/api.md "Worker pools"): the server records the worker
   * (`oz worker list`) and gives it only runs whose `worker_host` is absent,
   * its name or one of its labels. Absent (older workers): only runs without
   * a `worker_host`, and the worker is not listed.
   */
  worker?: WorkerProfile;
}

/** A worker as it describes itself in every claim. */
export interface WorkerProfile {
  /** A short lowercase token (src/core/worker-pool.ts `POOL_NAME_PATTERN`); not unique: several workers may share a name. */
  name: string;
  labels: string[];
  /** The sandbox backend's name (`bwrap`, `direct`). */
  backend: string;
  /** How many runs it executes at once (its concurrency), free or not. */
  capacity: number;
  /** Its Oz version. */
  version: string;
}

/** The run's network as the server resolved it (src/api/worker-protocol.ts `claimedNetworkSchema`). */
export interface ClaimedNetwork {
  policy: NetworkPolicy;
  /** Domain rules, presets expanded (src/core/network-policy.ts). */
  allow: string[];
  internal_ranges: string[];
  unknown_presets: string[];
}

export interface ClaimedRun {
  run_id: string;
  /** Absent from servers before network allowlists. */
  network?: ClaimedNetwork;
  team_id: string;
  attempt: number;
  lease_token: string;
  lease_expires_at: number;
  lease_ttl_ms: number;
  /**
   * How much of the lease was left when the server sent this answer (the
   * hand-over takes time after the claim stamped the lease); the worker counts
   * from its arrival. Absent from older servers: the whole TTL.
   */
  lease_valid_for_ms?: number;
  prompt: string;
  title: string;
  harness: HarnessConfig;
  /** `provider/model`, resolved by the server from the run's `model_id` (a catalog id, `auto`); null = the harness's default. */
  model_id: string | null;
  /** The run's own limit, else the environment's; null = no limit. */
  max_runtime_ms: number | null;
  /** Agent budgets the run set; null = the worker's defaults. */
  max_steps: number | null;
  max_tokens: number | null;
  environment: ({ id: string; name: string } & EnvironmentConfig) | null;
  /**
   * The limits the run executes with, resolved by the server: the
   * environment's, else the team's defaults (the server's `OZ_SANDBOX_*`),
   * each capped by the team's current ceilings (`OZ_SANDBOX_MAX_*`, the team's
   * `limit_ceilings`); `maxRuntimeMs` is `max_runtime_ms`. Bytes, ms, cores.
   */
  limits: RunLimits;
  cancel_requested: boolean;
  /** The schedule that made the run (`OZ_SCHEDULE_ID` inside it), else null. */
  schedule_id: string | null;
  /** The run that spawned this one (`OZ_PARENT_RUN_ID` inside it), else null (optional: fixtures and older servers omit it). */
  parent_run_id?: string | null;
  /**
   * `false`: the run asked for a cold start (`config.snapshot: false`): run the
   * setup commands, restore no snapshot. Sent only when set; absent = the
   * worker may start from a snapshot of the environment.
   */
  snapshot?: boolean;
  /** The execution this claim is for: 1, then one more per follow-up to the ended run (absent from older servers: 1). */
  execution?: number;
  /** Follow-ups the agent has not been given yet, oldest first: appended to what it starts with. */
  followups?: ClaimedFollowup[];
  /** The last follow-up the run's agent has been given (the control poll waits for later ones). */
  followups_after?: number;
  /**
   * Per repository of the environment (same order), where to start instead
   * of its branch: the run's own branch from an earlier execution, or the
   * branch or commit the run asked for (`config.branches`); null: the
   * environment's branch.
   */
  checkouts?: (RepoCheckout | null)[];
  /**
   * The workspace the last execution left, to restore after the checkouts (`GET …/workspace`), and
   * each repository's commit when it was made: a checkout that is elsewhere now (the branch moved)
   * is not restored over.
   */
  workspace?: { execution: number; bytes: number; heads: string[] };
  /** Per repository of the environment (same order), the commit the run's patch starts from (its first execution's start); null: this execution's. */
  diff_bases?: (string | null)[];
  /** Keep a workspace snapshot at the end of the execution (false: `--no-snapshot`). */
  keep_workspace?: boolean;
  /** The largest workspace snapshot the server takes (bytes). */
  workspace_max_bytes?: number;
  /** Keep the sandbox alive this long after the execution ends, for a follow-up (0: tear down at once). */
  idle_timeout_ms?: number;
  /** The claiming worker holds the sandbox the run's last execution left idle, and may go on in it (false: a cancel or the timeout ended the hold; tear it down). */
  resume_idle?: boolean;
  /**
   * The run's secrets, resolved by the server at claim (docs/design.md "Secrets"):
   * variables for every process, variables for setup commands only, and
   * allowlisted names that matched no secret; or why the run cannot have them.
   */
  secrets: ClaimedSecrets;
}

export interface ClaimedFollowup {
  seq: number;
  message: string;
}

/** Where a repository's checkout starts: a branch (in the mirror) or a commit. */
export interface RepoCheckout {
  branch?: string;
  commit?: string;
  /** The run's changes go to `branch` itself (a branch the run was asked to start from: pushed without force), not to the worker's `<prefix><run id>`. */
  push?: boolean;
}

export interface FollowupsDeliveredRequest extends LeaseRequest {
  /** The last follow-up the agent has been given. */
  through: number;
}

/** The conversation of the run's earlier executions (message, tool_call and tool_result events, oldest first, the newest kept within the bound). */
export interface HistoryResponse {
  events: { type: RunEventType; data: Record<string, unknown> }[];
  /** Older events were left out to stay within the bound. */
  truncated: boolean;
}

/** The patches of the run's changes, per repository it published to. */
export interface DiffsRequest extends LeaseRequest {
  diffs: { repository: string; base: string; head: string; patch: string; bytes: number; truncated: boolean }[];
}

export interface IdleRequest {
  worker_id: string;
  run_ids: string[];
}

/** Of the runs asked about, those whose idle sandbox the worker may keep (the rest: tear down; a cancel or a lapsed hold). */
export interface IdleResponse {
  keep: string[];
}

export type ClaimedSecrets =
  | {
      env: Record<string, string>;
      setup_env: Record<string, string>;
      unknown: string[];
      /** The harness CLI's key: the secret `harness_auth_secrets` names, else the run's `claude-api-key` / `codex-api-key` secret of its harness. */
      harness_auth?: string;
      /** The upstream base URL of that key (a `codex-api-key` secret's `base_url`), which the model proxy calls instead of the worker's. */
      harness_auth_base_url?: string;
      /** The run's `registry-auth` secret: what the worker pulls the environment's image with. */
      registry_auth?: { registry: string; username: string; password: string };
    }
  | { error: { message: string; reason: string } };

export interface ClaimResponse {
  runs: ClaimedRun[];
}

export interface LeaseRequest {
  lease_token: string;
}

export interface StartResponse {
  cancel_requested: boolean;
}

export interface HeartbeatResponse {
  lease_expires_at: number;
  cancel_requested: boolean;
}

export interface ControlResponse {
  cancel_requested: boolean;
  /** Follow-ups after the `after` the poll named, oldest first (absent from older servers). */
  followups?: ClaimedFollowup[];
}

/**
 * The worker's report of an environment snapshot: the `data` of a `notice`
 * event in the run's ordinary event upload. The server records the latest one
 * per environment (docs/environments.md "Snapshots"); a malformed one is
 * stored as any notice and recorded nowhere else, never failing the upload.
 */
export const SNAPSHOT_NOTICE_REASONS = ['snapshot_saved', 'snapshot_restored'] as const;
export type SnapshotNoticeReason = (typeof SNAPSHOT_NOTICE_REASONS)[number];

export interface SnapshotNoticeData {
  level: 'info';
  message: string;
  reason: SnapshotNoticeReason;
  snapshot: {
    /** 64 lowercase hex digits. */
    key: string;
    bytes: number;
    /** When the snapshot was made, epoch ms. */
    created_at: number;
    /** How many runs restored it so far. */
    hits: number;
  };
}

export interface WorkerEvent {
  type: RunEventType;
  at: number;
  data: Record<string, unknown>;
}

export interface EventBatchRequest extends LeaseRequest {
  batch_no: number;
  events: WorkerEvent[];
}

/** `duplicate`: the batch was recorded before (a retry); nothing was appended. */
export interface EventBatchResponse {
  first_seq: number;
  count: number;
  duplicate: boolean;
}

export type FinishState = 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'ERROR';

export interface FinishRequest extends LeaseRequest {
  state: FinishState;
  status_message?: RunStatusMessage | undefined;
  usage?: RunUsage | undefined;
  /** The last follow-up the agent was given: any later one starts the run's next execution at once. */
  followups_through?: number | undefined;
  /** The worker keeps the sandbox alive this long for a follow-up (0 or absent: it is gone). */
  idle_for_ms?: number | undefined;
  /** What the execution's network did (kept with the run, added to earlier executions'). */
  network_audit?: NetworkAudit | undefined;
}

export interface FinishResponse {
  state: FinishState;
}
