import type { NetworkAudit } from '../core/network-audit.js';
import type { Environment, EnvironmentLimits, EnvironmentPatch, NewEnvironment } from '../core/environment.js';
import type { ApiKey, NewApiKey, NewWorkerToken, Team, TeamPatch, User, UserRole, WorkerToken } from '../core/identity.js';
import type { NewRunEvent, RunEvent } from '../core/run-event.js';
import type { RunState, TransitionActor } from '../core/run-state.js';
import type { ArtifactType, RunArtifact, ExecutionLocation, ListRunsQuery, Run, RunConfig, RunPage, RunSource, RunStatusMessage, RunUsage, ScheduleRef } from '../core/run.js';
import type { EnvironmentSnapshotRepository } from './environment-snapshot-repository.js';
import type { DialectName } from './schema.js';
import type { ScheduleRepository } from './schedule-repository.js';
import type { SecretRepository } from './secret-repository.js';
import type { FollowupRepository } from './followup-repository.js';
import type { WorkerRepository } from './worker-repository.js';
import type { WebSessionRepository } from './web-session-repository.js';

export interface NewRun {
  teamId: string;
  creatorId: string | null;
  title: string;
  prompt: string;
  source: RunSource;
  executionLocation: ExecutionLocation;
  environmentId: string | null;
  schedule: ScheduleRef | null;
  parentRunId: string | null;
  skillSpec: string | null;
  config: RunConfig;
}

export interface IdempotencyInput {
  key: string;
  /** A hash of the canonical request body: same key + other body is refused. */
  requestHash: string;
}

export interface CreateRunResult {
  run: Run;
  /** False when an earlier request with the same idempotency key made it. */
  created: boolean;
}

/**
 * One compare-and-set on a run's state. It succeeds only if the run is in
 * `from` (and, when given, still holds `leaseToken`, its lease expired before
 * `leaseExpiredBefore`, or it has no live lease at `noLiveLeaseAt`), and the
 * transition is in the table of `core/run-state.ts`. A `state` event is
 * appended in the same transaction.
 */
export interface TransitionInput {
  runId: string;
  from: RunState;
  to: RunState;
  /** Who moves the run: the table in src/core/run-state.ts says who may (refused otherwise). */
  by: TransitionActor;
  at: number;
  leaseToken?: string | undefined;
  /** The lease must still be live at this time (a worker's write: token, state and expiry in one statement). */
  leaseLiveAt?: number | undefined;
  leaseExpiredBefore?: number | undefined;
  noLiveLeaseAt?: number | undefined;
  statusMessage?: RunStatusMessage | null | undefined;
  /** The run's usage over all its executions. */
  usage?: RunUsage | undefined;
  /** The ending execution's own usage, where it differs from the run's (a follow-up's execution); default `usage`. */
  executionUsage?: RunUsage | undefined;
  /** The run's network audit over all its executions. */
  networkAudit?: NetworkAudit | undefined;
}

export interface ClaimInput {
  workerId: string;
  /**
   * The claiming worker's name and labels (docs/api.md "Worker pools"): it
   * gets only runs routed nowhere (`worker_host` absent), to its name, or to
   * one of its labels. Absent: only runs routed nowhere.
   */
  workerName?: string | undefined;
  workerLabels?: readonly string[] | undefined;
  /** How many runs to claim at most (batched claim). */
  limit: number;
  leaseTtlMs: number;
  at: number;
}

export interface SweepOutcome {
  runId: string;
  from: RunState;
  to: RunState;
  reason: string;
}

/** Keys (run ids, "claimable") broadcast to every server on the same database. */
export interface WakeupBus {
  subscribe(handler: (key: string) => void): Promise<() => void>;
  notify(key: string): void;
}

export interface Store {
  readonly dialect: DialectName;
  /** PostgreSQL claims with `FOR UPDATE SKIP LOCKED`; SQLite serializes writers. */
  readonly supportsSkipLocked: boolean;
  /**
   * Wake-ups across processes (PostgreSQL LISTEN/NOTIFY). Null where one
   * process owns the database (the embedded SQLite), so in-process is enough.
   */
  readonly wakeups: WakeupBus | null;

  // Teams, users, API keys
  /** The first team of a deployment is its operator's (`platform`). */
  createTeam(input: { name: string; maxConcurrentRuns: number; limitCeilings?: EnvironmentLimits }, at: number): Promise<Team>;
  /** Change a team's concurrency limit or ceilings (given fields replace); null when there is no such team. */
  updateTeam(id: string, patch: TeamPatch): Promise<Team | null>;
  getTeam(id: string): Promise<Team | null>;
  getTeamByName(name: string): Promise<Team | null>;
  /** Every team, oldest first (the platform team's admins list them). */
  listTeams(): Promise<Team[]>;
  /** A team's users, oldest first. */
  listUsers(teamId: string): Promise<User[]>;
  countTeams(): Promise<number>;
  createUser(input: { teamId: string; email: string; displayName: string | null; role: UserRole }, at: number): Promise<User>;
  getUser(id: string): Promise<User | null>;
  getUserByEmail(email: string): Promise<User | null>;
  createApiKey(input: NewApiKey, at: number): Promise<ApiKey>;
  /** The live (unexpired) key with this secret hash, with its owner. */
  findApiKeyByHash(secretHash: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null>;
  /** The live key with this id, with its owner (a dashboard session acts as it). */
  findApiKeyById(id: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null>;
  listApiKeys(teamId: string, userId?: string): Promise<ApiKey[]>;
  /** Expire a key now; false when it does not exist in the team. */
  expireApiKey(teamId: string, keyId: string, at: number): Promise<boolean>;

  // Worker tokens (deployment-wide)
  createWorkerToken(input: NewWorkerToken, at: number): Promise<WorkerToken>;
  listWorkerTokens(): Promise<WorkerToken[]>;
  findWorkerTokenByHash(secretHash: string): Promise<WorkerToken | null>;
  revokeWorkerToken(id: string, at: number): Promise<boolean>;

  // Environments
  createEnvironment(input: NewEnvironment, at: number): Promise<Environment>;
  /** Visible to `viewerId`: team-scoped, or personal to that user. */
  getEnvironment(teamId: string, id: string, viewerId?: string): Promise<Environment | null>;
  listEnvironments(teamId: string, viewerId?: string): Promise<Environment[]>;
  updateEnvironment(teamId: string, id: string, patch: EnvironmentPatch, at: number): Promise<Environment | null>;
  deleteEnvironment(teamId: string, id: string): Promise<boolean>;

  // Runs
  createRun(input: NewRun, at: number, idempotency?: IdempotencyInput): Promise<CreateRunResult>;
  /** A run of the team; another team's run is `null` (the API answers 404). */
  getRun(teamId: string, id: string): Promise<Run | null>;
  /** Any run by id, for the worker protocol (lease-checked by the caller). */
  getRunById(id: string): Promise<Run | null>;
  listRuns(query: ListRunsQuery): Promise<RunPage>;
  transitionRun(input: TransitionInput): Promise<Run>;
  /**
   * Admit the team's oldest QUEUED runs to PENDING while fewer than the team's
   * `maxConcurrentRuns` are active. Returns the admitted runs.
   */
  admitQueuedRuns(teamId: string, at: number): Promise<Run[]>;
  /** Record a cancel request on a leased run (the worker learns it and stops). */
  requestCancel(runId: string, at: number): Promise<Run | null>;
  /** Claim the oldest admitted runs, each with its own random lease token. */
  claimRuns(input: ClaimInput): Promise<Run[]>;
  /** Extend a held lease; writes only `lease_expires_at`. False when the token is stale. */
  renewLease(runId: string, leaseToken: string, leaseTtlMs: number, at: number): Promise<boolean>;
  /**
   * Resolve runs whose lease expired at or before `expiredBefore` (default
   * `at`; the server passes a grace period so a frozen worker's sandbox has
   * fenced itself first): re-queue once, cancel, or ERROR `worker_lost`.
   */
  sweepExpiredLeases(at: number, expiredBefore?: number): Promise<SweepOutcome[]>;
  /** Treat the leases of workers whose id starts with `workerIdPrefix` as expired at `expiredAt` (they are known dead). */
  expireLeasesHeldBy(workerIdPrefix: string, expiredAt: number): Promise<number>;

  /** Record an output of a run (pull request, branch, file, plan): filterable by type. */
  addRunArtifact(runId: string, type: ArtifactType, data: Record<string, unknown>, at: number): Promise<void>;
  /** The artifacts of these runs, oldest first. */
  listRunArtifacts(runIds: readonly string[]): Promise<RunArtifact[]>;

  // Run events
  appendRunEvents(runId: string, events: NewRunEvent[]): Promise<RunEvent[]>;
  listRunEvents(runId: string, afterSeq: number, limit: number): Promise<RunEvent[]>;
  /**
   * A worker's numbered batch under its lease, appended at most once (retries
   * are acknowledged); refused unless the lease is the run's, live at `at`,
   * in a leased state — checked in the statement that reserves the sequence numbers.
   */
  appendRunEventBatch(runId: string, leaseToken: string, batchNo: number, events: NewRunEvent[], at: number): Promise<{ firstSeq: number; count: number; duplicate: boolean }>;
  /** Teams that have QUEUED runs (periodic admission). */
  listTeamsWithQueuedRuns(): Promise<string[]>;

  /** Each environment's latest warm-start snapshot, as its workers reported it. */
  readonly environmentSnapshots: EnvironmentSnapshotRepository;
  /** Managed secrets, sealed at rest. */
  readonly secrets: SecretRepository;
  /** Cron schedules and their fired slots. */
  readonly schedules: ScheduleRepository;
  /** Worker pools: the workers as their claims describe them, and the routed runs that wait for one. */
  readonly workers: WorkerRepository;
  /** Follow-ups, executions, idle sandboxes and workspace snapshots. */
  readonly followups: FollowupRepository;
  /** The dashboard's sessions and one-time login links. */
  readonly webSessions: WebSessionRepository;

  close(): Promise<void>;
}
