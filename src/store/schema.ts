import type { Generated } from 'kysely';
/**
 * Row types of the tables, as Kysely sees them. One representation for both
 * SQLite and PostgreSQL, chosen so the same SQL works on both:
 * - timestamps are epoch milliseconds (`bigint`; PostgreSQL's int8 is parsed
 *   to a JS number by the pool's type parser, exact up to year 287,396);
 *   the clock is injected and the store never calls the database's now();
 * - JSON documents are `text` (parsed by the row mappers), not `jsonb`;
 * - booleans are integers 0/1.
 */

export interface TeamsTable {
  id: string;
  name: string;
  max_concurrent_runs: number;
  created_at: number;
  /** JSON of EnvironmentLimits (stored units); null = the operator's ceilings only. */
  limit_ceilings: string | null;
  /** 1 for the operator's team (its admins administer the deployment). */
  platform: number;
}

export interface UsersTable {
  id: string;
  team_id: string;
  email: string;
  display_name: string | null;
  role: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  team_id: string;
  user_id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}

export interface EnvironmentsTable {
  id: string;
  team_id: string;
  owner_user_id: string | null;
  creator_id: string | null;
  name: string;
  description: string | null;
  config: string;
  setup_failed: number;
  created_at: number;
  updated_at: number;
  /** Who last changed it (create, PATCH); null = unknown. */
  updated_by: string | null;
}

/** An environment's latest warm-start snapshot, as a worker reported it (migration 0008). */
export interface EnvironmentSnapshotsTable {
  environment_id: string;
  team_id: string;
  key: string;
  bytes: number;
  created_at: number;
  hits: number;
  last_used_at: number;
  run_id: string;
}

export interface RunsTable {
  id: string;
  team_id: string;
  creator_id: string | null;
  title: string;
  prompt: string;
  source: string;
  execution_location: string;
  state: string;
  environment_id: string | null;
  schedule_id: string | null;
  schedule_name: string | null;
  schedule_cron: string | null;
  parent_run_id: string | null;
  skill_spec: string | null;
  name: string | null;
  model_id: string | null;
  config: string;
  attempt: number;
  worker_id: string | null;
  /** The name of the worker that claimed it (migration 0009). */
  worker_name: string | null;
  /** The name or label of the workers that may claim it; null = any (migration 0009). */
  worker_host: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  cancel_requested_at: number | null;
  status_message: string | null;
  usage: string | null;
  network_audit: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  queued_at: number | null;
  pending_at: number | null;
  claimed_at: number | null;
  inprogress_at: number | null;
  blocked_at: number | null;
  succeeded_at: number | null;
  failed_at: number | null;
  error_at: number | null;
  cancelled_at: number | null;
  last_event_seq: number;
  /** The number of the run's latest execution (migration 0010). */
  execution: Generated<number>;
  /** The last follow-up the run's agent was given (migration 0010). */
  followups_through: Generated<number>;
  /** The worker keeping the ended run's sandbox alive, and until when (migration 0010). */
  idle_worker_id: string | null;
  idle_until: number | null;
}

export interface RunExecutionsTable {
  run_id: string;
  number: number;
  state: string;
  created_at: number;
  worker_id: string | null;
  worker_name: string | null;
  claimed_at: number | null;
  started_at: number | null;
  ended_at: number | null;
  status_message: string | null;
  usage: string | null;
}

export interface RunFollowupsTable {
  run_id: string;
  seq: number;
  message: string;
  creator_id: string | null;
  execution: number;
  created_at: number;
}

export interface RunWorkspaceSnapshotsTable {
  run_id: string;
  execution: number;
  bytes: number;
  /** Each repository's commit when it was made, a JSON array. */
  heads: string;
  data: Buffer;
  created_at: number;
}

export interface WebSessionsTable {
  secret_hash: string;
  key_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
}

export interface WebLoginLinksTable {
  secret_hash: string;
  key_id: string;
  path: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface RunDiffsTable {
  run_id: string;
  repository: string;
  execution: number;
  base: string;
  head: string;
  patch: string;
  /** The whole patch's size (bytes), cut or not. */
  bytes: number;
  /** 1 when `patch` was cut to the bound. */
  truncated: number;
  created_at: number;
}

export interface RunEventsTable {
  run_id: string;
  seq: number;
  type: string;
  at: number;
  data: string;
}

export interface RunArtifactsTable {
  id: string;
  run_id: string;
  type: string;
  data: string;
  created_at: number;
}

export interface IdempotencyKeysTable {
  team_id: string;
  key: string;
  request_hash: string;
  run_id: string;
  created_at: number;
}

export interface WorkerTokensTable {
  id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  created_by: string | null;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** A worker process as its last claim described it (migration 0009). */
export interface WorkersTable {
  id: string;
  name: string;
  /** JSON array of strings. */
  labels: string;
  backend: string;
  capacity: number;
  version: string;
  /** The worker token it claims with (`embedded` for a server's own worker); null when unknown. */
  token_name: string | null;
  first_seen_at: number;
  last_seen_at: number;
}

export interface RunEventBatchesTable {
  run_id: string;
  lease_token: string;
  batch_no: number;
  first_seq: number;
  count: number;
}

export interface SecretsTable {
  id: string;
  team_id: string;
  /** '' for a team secret. */
  owner_user_id: string;
  name: string;
  type: string;
  description: string | null;
  setup_only: number;
  /** A `codex-api-key`'s upstream; null otherwise (migration 0007). */
  base_url: string | null;
  value_cipher: string;
  wrapped_key: string;
  created_at: number;
  updated_at: number;
}

export interface SecretKeyringTable {
  id: string;
  verifier: string;
  created_at: number;
}

export interface SchedulesTable {
  id: string;
  team_id: string;
  owner_user_id: string | null;
  creator_id: string;
  updated_by: string;
  name: string;
  cron: string;
  timezone: string;
  overlap_policy: string;
  enabled: number;
  prompt: string;
  agent_config: string;
  next_fire_at: number | null;
  queued_slot: number | null;
  last_fired_at: number | null;
  last_run_id: string | null;
  last_spawn_error: string | null;
  created_at: number;
  updated_at: number;
}

export interface ScheduleFiresTable {
  schedule_id: string;
  slot: number;
  outcome: string;
  run_id: string | null;
  created_at: number;
}

export interface Database {
  teams: TeamsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  environments: EnvironmentsTable;
  environment_snapshots: EnvironmentSnapshotsTable;
  runs: RunsTable;
  run_events: RunEventsTable;
  run_executions: RunExecutionsTable;
  run_followups: RunFollowupsTable;
  run_workspace_snapshots: RunWorkspaceSnapshotsTable;
  run_diffs: RunDiffsTable;
  web_sessions: WebSessionsTable;
  web_login_links: WebLoginLinksTable;
  run_artifacts: RunArtifactsTable;
  idempotency_keys: IdempotencyKeysTable;
  worker_tokens: WorkerTokensTable;
  workers: WorkersTable;
  run_event_batches: RunEventBatchesTable;
  secrets: SecretsTable;
  secret_keyring: SecretKeyringTable;
  schedules: SchedulesTable;
  schedule_fires: ScheduleFiresTable;
}

export type DialectName = 'sqlite' | 'postgres';
