import { createHash } from 'node:crypto';
import { notFound, OzError, isOzError } from '../core/errors.js';
import { isTerminal } from '../core/run-state.js';
import { authSecretsByType, type Run, type RunConfig, type RunSource, type ScheduleRef } from '../core/run.js';
import { limitAbove, type RepoSpec } from '../core/environment.js';
import type { Principal } from './auth.js';
import { refuseAboveMaxima, teamLimits } from './limits.js';
import type { ServerDeps } from './deps.js';
import { chooseModel } from './model-choice.js';
import type { RunAgentRequest } from '../api/run-requests.js';
import { routedHost, WAITING_FOR_WORKER } from '../core/worker-pool.js';
import { explainWait } from './worker-pools.js';
import { resolveBranches } from './repo-branches.js';
import type { FollowupResult, Replayed } from '../store/followup-repository.js';
import type { IdempotencyInput } from '../store/store.js';

/** Who acts: a caller of the API, or the scheduler on behalf of a schedule's creator. */
export type Actor = Pick<Principal, 'team' | 'user'>;

export interface CreateRunOptions {
  source: RunSource;
  idempotencyKey?: string;
  schedule?: ScheduleRef;
}

export interface CreatedRun {
  run: Run;
  atCapacity: boolean;
}

function featureNotAvailable(field: string, why = 'is not available on this server yet'): OzError {
  return new OzError('feature_not_available', `${field} ${why}`, { reason: field });
}

/** Spec fields we accept in the schema but do not implement: named, never silently ignored. */
export function rejectUnimplemented(body: RunAgentRequest): void {
  const c = body.config ?? {};
  const present: [string, unknown][] = [
    ['skill', body.skill],
    ['attachments', body.attachments],
    ['agent_identity_uid', body.agent_identity_uid],
    ['images', body.images],
    ['mode', body.mode],
    ['interactive', body.interactive === true ? true : undefined],
    ['team', body.team === false ? false : undefined],
    ['config.base_prompt', c.base_prompt],
    ['config.skill_spec', c.skill_spec],
    ['config.mcp_servers', c.mcp_servers],
    ['config.computer_use_enabled', c.computer_use_enabled === true ? true : undefined],
    ['config.runner_id', c.runner_id],
  ];
  for (const [field, value] of present) if (value !== undefined) throw featureNotAvailable(field);
}

/** A title from the prompt's first line when none is given. */
export function titleFromPrompt(prompt: string): string {
  const firstLine = prompt.trim().split('\n')[0]?.trim() ?? '';
  const title = firstLine.length > 0 ? firstLine : 'Untitled run';
  return title.length > 80 ? `${title.slice(0, 77).trimEnd()}…` : title;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Run creation and cancellation: one service for the API, the scheduler and
 * run-now. Validation beyond the schema (references, unimplemented fields),
 * idempotency, admission and wake-ups happen here.
 */
export class RunService {
  constructor(private readonly deps: ServerDeps) {}

  async create(principal: Actor, body: RunAgentRequest, options: CreateRunOptions): Promise<CreatedRun> {
    rejectUnimplemented(body);
    // After the unimplemented fields: `{skill}` alone is feature_not_available, not a missing prompt.
    const prompt = body.prompt;
    if (prompt === undefined) throw new OzError('invalid_request', 'prompt: is required', { reason: 'prompt' });
    const { store, clock } = this.deps;
    const team = principal.team;
    const c = body.config ?? {};
    // Limits: nothing above the team's ceilings (the operator's, lowered by the team's own).
    const { maxima } = teamLimits(this.deps, team);
    if (c.max_runtime_seconds !== undefined) refuseAboveMaxima({ maxRuntimeMs: c.max_runtime_seconds * 1000 }, maxima, 'config.');
    // Continuing a conversation (its id is its run's) is a follow-up to that run, with this prompt.
    if (body.conversation_id !== undefined) return this.continueConversation(principal, body, prompt, this.idempotency(body, options));
    let environmentHost: string | undefined;
    let environmentRepos: RepoSpec[] | null = null;
    if (c.environment_id !== undefined) {
      const env = await store.getEnvironment(team.id, c.environment_id, principal.user.id);
      if (!env) throw new OzError('resource_not_found', `config.environment_id: environment ${c.environment_id} not found`, { reason: 'config.environment_id' });
      environmentHost = env.config.workerHost;
      environmentRepos = env.config.repos;
      // A ceiling lowered after the environment was saved: say which of its limits is now too high.
      const above = limitAbove(env.config.limits, maxima);
      if (above) {
        throw new OzError(
          'invalid_request',
          `config.environment_id: environment ${env.name} sets limits.${above.api} = ${above.value}, above the maximum of ${above.max} for this team; lower it on the environment`,
          { reason: 'config.environment_id' },
        );
      }
    }
    if (body.parent_run_id !== undefined && !(await store.getRun(team.id, body.parent_run_id))) {
      throw new OzError('resource_not_found', `parent_run_id: run ${body.parent_run_id} not found`, { reason: 'parent_run_id' });
    }
    // The run's own worker_host (`warp`: any worker, whatever the environment says), else its environment's.
    const workerHost = routedHost(c.worker_host ?? environmentHost);
    const harness = c.harness ?? { type: 'oz' as const };
    const model = chooseModel(this.deps, c.model_id, harness.type, 'config.model_id');
    const config: RunConfig = {
      harness: harness.command !== undefined ? { type: harness.type, command: harness.command } : { type: harness.type },
      ...(c.name !== undefined ? { name: c.name } : {}),
      ...(model ? { modelId: model.requested } : {}),
      ...(model?.model ? { model: model.model } : {}),
      ...(c.secrets !== undefined ? { secrets: c.secrets } : {}),
      ...(c.max_runtime_seconds !== undefined ? { maxRuntimeMs: c.max_runtime_seconds * 1000 } : {}),
      ...(c.max_steps !== undefined ? { maxSteps: c.max_steps } : {}),
      ...(c.harness_auth_secrets !== undefined ? { harnessAuthSecrets: authSecretsByType(c.harness_auth_secrets) } : {}),
      ...(c.max_tokens !== undefined ? { maxTokens: c.max_tokens } : {}),
      // Stored only when false (a cold start); true is the default, a warm start when the environment has a matching snapshot.
      ...(c.snapshot === false ? { snapshot: false as const } : {}),
      // Routed to the workers that answer to this name or label; `warp` (any worker) is stored as nothing.
      ...(workerHost !== null ? { workerHost } : {}),
      ...(c.idle_timeout_minutes !== undefined ? { idleTimeoutMinutes: c.idle_timeout_minutes } : {}),
      ...(c.branches !== undefined ? { branches: resolveBranches(c.branches, environmentRepos) } : {}),
    };
    const now = clock.now();
    const idempotency = this.idempotency(body, options);
    const { run, created } = await store.createRun(
      {
        teamId: team.id,
        creatorId: principal.user.id,
        title: body.title ?? titleFromPrompt(prompt),
        prompt,
        source: options.source,
        executionLocation: 'REMOTE',
        environmentId: c.environment_id ?? null,
        schedule: options.schedule ?? null,
        parentRunId: body.parent_run_id ?? null,
        skillSpec: null,
        config,
      },
      now,
      idempotency,
    );
    if (created) this.deps.hub.publish(run.id);
    await this.admit(team.id);
    // A routed run no present worker can take says so at once (the sweeper keeps it up to date).
    if (workerHost !== null) await explainWait(this.deps, run.id);
    const current = (await store.getRun(team.id, run.id)) ?? run;
    // Queued behind the team's limit, not waiting for a worker that can take it (which its status message says).
    const waitingForWorker = current.statusMessage?.reason === WAITING_FOR_WORKER;
    return { run: current, atCapacity: current.state === 'QUEUED' && !waitingForWorker };
  }

  /**
   * `conversation_id` on creation: the conversation's run goes on with this
   * prompt as a follow-up. Only the prompt and title go with it: the run keeps
   * its own configuration, so a config that asks for another one is refused.
   */
  /** The request's `Idempotency-Key` and a hash of what it asks. */
  private idempotency(body: RunAgentRequest, options: CreateRunOptions): IdempotencyInput | undefined {
    if (!options.idempotencyKey) return undefined;
    return {
      key: options.idempotencyKey,
      requestHash: createHash('sha256')
        .update(canonicalJson({ body, source: options.source }))
        .digest('hex'),
    };
  }

  private async continueConversation(principal: Actor, body: RunAgentRequest, prompt: string, idempotency?: IdempotencyInput): Promise<CreatedRun> {
    const id = body.conversation_id as string;
    const run = await this.deps.store.getRun(principal.team.id, id);
    if (!run) throw new OzError('resource_not_found', `conversation_id: conversation ${id} not found`, { reason: 'conversation_id' });
    const c = body.config ?? {};
    if (c.environment_id !== undefined && c.environment_id !== run.environmentId) {
      throw new OzError('invalid_request', `config.environment_id: the conversation's run ${id} runs on ${run.environmentId ?? 'no environment'}; a follow-up keeps it`, {
        reason: 'config.environment_id',
      });
    }
    const others = Object.entries(c).filter(([key, value]) => value !== undefined && key !== 'environment_id');
    if (others.length > 0) {
      throw new OzError('invalid_request', `config.${others[0]?.[0]}: a run continuing a conversation keeps that conversation's configuration`, {
        reason: `config.${others[0]?.[0]}`,
      });
    }
    const result = await this.followUp(principal, id, prompt, idempotency);
    return { run: result.run, atCapacity: result.run.state === 'QUEUED' };
  }

  /**
   * A follow-up (docs/design.md "Follow-ups and executions"): recorded and
   * written to the conversation; a run that has not started takes it with its
   * prompt, a running one at its next step (its worker's control poll wakes),
   * an ended one in its next execution, admitted like a new run.
   */
  async followUp(principal: Actor, runId: string, message: string): Promise<FollowupResult & { delivery: 'with_start' | 'running' }>;
  async followUp(principal: Actor, runId: string, message: string, idempotency?: IdempotencyInput): Promise<(FollowupResult | Replayed) & { delivery: 'with_start' | 'running' }>;
  async followUp(principal: Actor, runId: string, message: string, idempotency?: IdempotencyInput): Promise<(FollowupResult | Replayed) & { delivery: 'with_start' | 'running' }> {
    const { store, clock, hub } = this.deps;
    const run = await store.getRun(principal.team.id, runId);
    if (!run) throw notFound('run', runId);
    // Its executions run with the creator's personal secrets and approval: nobody else steers them.
    if (run.creatorId !== principal.user.id) {
      throw new OzError(
        'not_authorized',
        `run ${runId}: only the run's creator can send it follow-ups (its executions may hold the creator's personal secrets); start a run of your own`,
        {
          reason: 'creator_only',
        },
      );
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await store.followups.add(principal.team.id, runId, message, principal.user.id, clock.now(), idempotency);
        hub.publish(runId);
        if ('startedExecution' in result && result.startedExecution) await this.admit(principal.team.id);
        const current = (await store.getRun(principal.team.id, runId)) ?? result.run;
        const delivery = current.state === 'INPROGRESS' || current.state === 'BLOCKED' ? 'running' : 'with_start';
        return { ...result, run: current, delivery };
      } catch (error) {
        // Another follow-up (or the worker's finish) moved the run first: look again.
        if (attempt < 4 && isOzError(error) && error.code === 'conflict' && error.reason !== 'followup_limit') continue;
        throw error;
      }
    }
  }

  /** After an execution ended: follow-ups its agent never had start the next one now. */
  async continueUndelivered(runId: string): Promise<void> {
    try {
      if (await this.deps.store.followups.continueUndelivered(runId, this.deps.clock.now())) this.deps.hub.publish(runId);
    } catch (error) {
      // A follow-up re-queued the run first: that execution takes them.
      if (!(isOzError(error) && error.code === 'conflict')) throw error;
    }
  }

  /** Admit what fits under the team's limit, and wake readers of the admitted runs. */
  async admit(teamId: string): Promise<void> {
    const admitted = await this.deps.store.admitQueuedRuns(teamId, this.deps.clock.now());
    for (const run of admitted) this.deps.hub.publish(run.id);
    if (admitted.length > 0) this.deps.hub.publishClaimable();
  }

  /**
   * Cancel (docs/design.md "Run lifecycle"): a waiting run (QUEUED, PENDING, or
   * BLOCKED without a live lease) is CANCELLED here and now; a run a worker
   * holds gets `cancel_requested_at`, and the worker stops it and writes
   * CANCELLED. A terminal run is a 400. Races with a claim are retried.
   */
  async cancel(principal: Actor, runId: string): Promise<Run> {
    const { store, clock, hub } = this.deps;
    const who = principal.user.email;
    for (let attempt = 0; attempt < 5; attempt++) {
      const run = await store.getRun(principal.team.id, runId);
      if (!run) throw notFound('run', runId);
      if (isTerminal(run.state)) {
        // An ended run whose sandbox is kept for a follow-up: the cancel ends that (its worker tears it down).
        if (run.idleUntil !== null && (await store.followups.endIdle(runId, clock.now()))) {
          await this.admit(principal.team.id);
          return (await store.getRun(principal.team.id, runId)) ?? run;
        }
        throw new OzError('invalid_request', `run ${runId} is already ${run.state} and cannot be cancelled`, { reason: 'state' });
      }
      const now = clock.now();
      const statusMessage = { message: `Cancelled by ${who}`, reason: 'cancelled_by_user' };
      try {
        if (run.state === 'QUEUED' || run.state === 'PENDING') {
          const cancelled = await store.transitionRun({ runId, from: run.state, to: 'CANCELLED', by: 'server', at: now, statusMessage });
          hub.publish(runId);
          if (run.state === 'PENDING') await this.admit(principal.team.id);
          return cancelled;
        }
        if (run.state === 'BLOCKED' && (run.leaseExpiresAt === null || run.leaseExpiresAt <= now)) {
          const cancelled = await store.transitionRun({ runId, from: 'BLOCKED', to: 'CANCELLED', by: 'server', at: now, noLiveLeaseAt: now, statusMessage });
          hub.publish(runId);
          await this.admit(principal.team.id);
          return cancelled;
        }
        const requested = await store.requestCancel(runId, now);
        if (!requested) continue;
        if (run.cancelRequestedAt === null) {
          await store.appendRunEvents(runId, [{ type: 'notice', at: now, data: { level: 'info', message: `Cancel requested by ${who}` } }]);
        }
        hub.publish(runId);
        return requested;
      } catch (error) {
        if (isOzError(error) && error.code === 'conflict') continue;
        throw error;
      }
    }
    throw new OzError('conflict', `run ${runId} kept changing state; try the cancel again`, { retryable: true, reason: 'busy' });
  }
}
