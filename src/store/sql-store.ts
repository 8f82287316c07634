import type { Kysely } from 'kysely';
import type { Environment, EnvironmentLimits, EnvironmentPatch, NewEnvironment } from '../core/environment.js';
import type { ApiKey, NewApiKey, NewWorkerToken, Team, TeamPatch, User, UserRole, WorkerToken } from '../core/identity.js';
import type { NewRunEvent, RunEvent } from '../core/run-event.js';
import type { ArtifactType, ListRunsQuery, Run, RunArtifact, RunPage } from '../core/run.js';
import { EnvironmentRepository } from './environment-repository.js';
import { EnvironmentSnapshotRepository } from './environment-snapshot-repository.js';
import { EventRepository } from './event-repository.js';
import { IdentityRepository } from './identity-repository.js';
import { LeaseRepository } from './lease-repository.js';
import { RunRepository } from './run-repository.js';
import { ScheduleRepository } from './schedule-repository.js';
import { SecretRepository } from './secret-repository.js';
import { WorkerTokenRepository } from './worker-token-repository.js';
import { WorkerRepository } from './worker-repository.js';
import { FollowupRepository } from './followup-repository.js';
import { WebSessionRepository } from './web-session-repository.js';
import type { Database, DialectName } from './schema.js';
import type { DialectOps } from './store-context.js';
import type { ClaimInput, CreateRunResult, IdempotencyInput, NewRun, Store, SweepOutcome, WakeupBus, TransitionInput } from './store.js';

/**
 * The {@link Store} over Kysely, the same code for SQLite and PostgreSQL; what
 * differs lives in {@link DialectOps}. Each concern is its own repository.
 */
export class SqlStore implements Store {
  readonly dialect: DialectName;
  readonly supportsSkipLocked: boolean;
  readonly wakeups: WakeupBus | null;
  private readonly identity: IdentityRepository;
  private readonly environments: EnvironmentRepository;
  private readonly runs: RunRepository;
  private readonly leases: LeaseRepository;
  private readonly events: EventRepository;
  private readonly workerTokens: WorkerTokenRepository;
  readonly environmentSnapshots: EnvironmentSnapshotRepository;
  readonly secrets: SecretRepository;
  readonly schedules: ScheduleRepository;
  readonly workers: WorkerRepository;
  readonly followups: FollowupRepository;
  readonly webSessions: WebSessionRepository;

  constructor(
    readonly db: Kysely<Database>,
    ops: DialectOps,
    private readonly onClose: () => Promise<void> = async () => {},
    wakeups: WakeupBus | null = null,
  ) {
    this.wakeups = wakeups;
    this.dialect = ops.name;
    this.supportsSkipLocked = ops.supportsSkipLocked;
    const ctx = { db, ops };
    this.identity = new IdentityRepository(ctx);
    this.environments = new EnvironmentRepository(ctx);
    this.runs = new RunRepository(ctx);
    this.leases = new LeaseRepository(ctx);
    this.events = new EventRepository(ctx);
    this.workerTokens = new WorkerTokenRepository(ctx);
    this.environmentSnapshots = new EnvironmentSnapshotRepository(ctx);
    this.secrets = new SecretRepository(ctx);
    this.schedules = new ScheduleRepository(ctx);
    this.workers = new WorkerRepository(ctx);
    this.followups = new FollowupRepository(ctx);
    this.webSessions = new WebSessionRepository(ctx, this.identity);
  }

  createTeam(input: { name: string; maxConcurrentRuns: number; limitCeilings?: EnvironmentLimits }, at: number): Promise<Team> {
    return this.identity.createTeam(input, at);
  }
  updateTeam(id: string, patch: TeamPatch): Promise<Team | null> {
    return this.identity.updateTeam(id, patch);
  }
  getTeam(id: string): Promise<Team | null> {
    return this.identity.getTeam(id);
  }
  getTeamByName(name: string): Promise<Team | null> {
    return this.identity.getTeamByName(name);
  }
  listTeams(): Promise<Team[]> {
    return this.identity.listTeams();
  }
  listUsers(teamId: string): Promise<User[]> {
    return this.identity.listUsers(teamId);
  }
  countTeams(): Promise<number> {
    return this.identity.countTeams();
  }
  createUser(input: { teamId: string; email: string; displayName: string | null; role: UserRole }, at: number): Promise<User> {
    return this.identity.createUser(input, at);
  }
  getUser(id: string): Promise<User | null> {
    return this.identity.getUser(id);
  }
  getUserByEmail(email: string): Promise<User | null> {
    return this.identity.getUserByEmail(email);
  }
  createApiKey(input: NewApiKey, at: number): Promise<ApiKey> {
    return this.identity.createApiKey(input, at);
  }
  findApiKeyByHash(secretHash: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null> {
    return this.identity.findApiKeyByHash(secretHash, at);
  }
  findApiKeyById(id: string, at: number): Promise<{ key: ApiKey; user: User; team: Team } | null> {
    return this.identity.findApiKeyById(id, at);
  }
  listApiKeys(teamId: string, userId?: string): Promise<ApiKey[]> {
    return this.identity.listApiKeys(teamId, userId);
  }
  expireApiKey(teamId: string, keyId: string, at: number): Promise<boolean> {
    return this.identity.expireApiKey(teamId, keyId, at);
  }

  createWorkerToken(input: NewWorkerToken, at: number): Promise<WorkerToken> {
    return this.workerTokens.create(input, at);
  }
  listWorkerTokens(): Promise<WorkerToken[]> {
    return this.workerTokens.list();
  }
  findWorkerTokenByHash(secretHash: string): Promise<WorkerToken | null> {
    return this.workerTokens.findByHash(secretHash);
  }
  revokeWorkerToken(id: string, at: number): Promise<boolean> {
    return this.workerTokens.revoke(id, at);
  }

  createEnvironment(input: NewEnvironment, at: number): Promise<Environment> {
    return this.environments.create(input, at);
  }
  getEnvironment(teamId: string, id: string, viewerId?: string): Promise<Environment | null> {
    return this.environments.get(teamId, id, viewerId);
  }
  listEnvironments(teamId: string, viewerId?: string): Promise<Environment[]> {
    return this.environments.list(teamId, viewerId);
  }
  updateEnvironment(teamId: string, id: string, patch: EnvironmentPatch, at: number): Promise<Environment | null> {
    return this.environments.update(teamId, id, patch, at);
  }
  deleteEnvironment(teamId: string, id: string): Promise<boolean> {
    return this.environments.delete(teamId, id);
  }

  createRun(input: NewRun, at: number, idempotency?: IdempotencyInput): Promise<CreateRunResult> {
    return this.runs.create(input, at, idempotency);
  }
  getRun(teamId: string, id: string): Promise<Run | null> {
    return this.runs.get(teamId, id);
  }
  getRunById(id: string): Promise<Run | null> {
    return this.runs.getById(id);
  }
  listRuns(query: ListRunsQuery): Promise<RunPage> {
    return this.runs.list(query);
  }
  transitionRun(input: TransitionInput): Promise<Run> {
    return this.runs.transition(input);
  }
  admitQueuedRuns(teamId: string, at: number): Promise<Run[]> {
    return this.runs.admit(teamId, at);
  }
  requestCancel(runId: string, at: number): Promise<Run | null> {
    return this.runs.requestCancel(runId, at);
  }
  claimRuns(input: ClaimInput): Promise<Run[]> {
    return this.leases.claim(input);
  }
  renewLease(runId: string, leaseToken: string, leaseTtlMs: number, at: number): Promise<boolean> {
    return this.leases.renew(runId, leaseToken, leaseTtlMs, at);
  }
  sweepExpiredLeases(at: number, expiredBefore: number = at): Promise<SweepOutcome[]> {
    return this.leases.sweep(at, expiredBefore);
  }
  expireLeasesHeldBy(workerIdPrefix: string, expiredAt: number): Promise<number> {
    return this.leases.expireHeldBy(workerIdPrefix, expiredAt);
  }

  addRunArtifact(runId: string, type: ArtifactType, data: Record<string, unknown>, at: number): Promise<void> {
    return this.runs.addArtifact(runId, type, data, at);
  }
  listRunArtifacts(runIds: readonly string[]): Promise<RunArtifact[]> {
    return this.runs.listArtifacts(runIds);
  }

  appendRunEvents(runId: string, events: NewRunEvent[]): Promise<RunEvent[]> {
    return this.events.append(runId, events);
  }
  listRunEvents(runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> {
    return this.events.list(runId, afterSeq, limit);
  }

  appendRunEventBatch(runId: string, leaseToken: string, batchNo: number, events: NewRunEvent[], at: number): Promise<{ firstSeq: number; count: number; duplicate: boolean }> {
    return this.events.appendBatch(runId, leaseToken, batchNo, events, at);
  }
  listTeamsWithQueuedRuns(): Promise<string[]> {
    return this.runs.teamsWithQueued();
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.onClose();
  }
}
