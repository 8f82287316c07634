import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idParam, noContentSchema } from '../../api/common.js';
import {
  claimRequestSchema,
  claimResponseSchema,
  controlQuerySchema,
  controlResponseSchema,
  diffsRequestSchema,
  eventBatchRequestSchema,
  followupsDeliveredRequestSchema,
  historyResponseSchema,
  idleRequestSchema,
  idleResponseSchema,
  workspaceQuerySchema,
  eventBatchResponseSchema,
  finishRequestSchema,
  finishResponseSchema,
  heartbeatResponseSchema,
  leaseRequestSchema,
  startResponseSchema,
} from '../../api/worker-protocol.js';
import { conflict, notFound, OzError } from '../../core/errors.js';
import { isTerminal, LEASED_STATES } from '../../core/run-state.js';
import type { Environment } from '../../core/environment.js';
import type { Run } from '../../core/run.js';
import type { ClaimedSecrets, ClaimedRun } from '../../core/worker-protocol.js';
import { resolveSecrets } from '../../secrets/resolve.js';
import type { ServerDeps } from '../deps.js';
import { harnessKeys } from '../harness-keys.js';
import { registryAuth } from '../registry-auth.js';
import { parseRegistryAuth, type SealedSecret } from '../../core/secret.js';
import { effectiveRunLimits, teamLimits } from '../limits.js';
import type { RunService } from '../run-service.js';
import { authenticateWorker } from '../worker-auth.js';
import { recordSnapshotReports } from '../environment-snapshots.js';
import { settingDefault } from '../../core/config.js';
import { PROVIDER_MODEL_PATTERN } from '../../core/model-catalog.js';
import { followupHandover, followupSettings } from '../followup-handover.js';
import { addUsage } from '../../core/execution.js';
import { conversationHistory } from '../conversation-history.js';
import { expandRules, formatDomainRule } from '../../core/network-policy.js';
import { mergeAudits } from '../../core/network-audit.js';
import { DEFAULT_NETWORK_SETTINGS } from '../environment-service.js';
import type { ClaimedNetwork } from '../../api/worker-protocol.js';

/** A workspace snapshot as the API documents it: a tar (the serializer is skipped for a Buffer). */
const workspaceTarSchema = z.any().meta({ description: 'application/octet-stream: a tar of the workspace the last execution left' });

/** A run's patches: up to 20 repositories of at most MAX_DIFF_BYTES each, JSON-escaped. */
const DIFFS_BODY_LIMIT = 48 * 1024 * 1024;

/** The body limit of an event batch (the API's own is 1 MiB). */
const EVENT_BATCH_BODY_LIMIT = 4 * 1024 * 1024;
const params = z.object({ runId: idParam });

/** A run the caller holds: its lease token must be the current one, in a leased state. */
async function heldRun(deps: ServerDeps, runId: string, leaseToken: string): Promise<Run> {
  const run = await deps.store.getRunById(runId);
  if (!run) throw notFound('run', runId);
  if (run.leaseToken !== leaseToken || !LEASED_STATES.includes(run.state)) {
    throw conflict(`run ${runId}: lease token is stale (the run is ${run.state})`, 'stale_lease');
  }
  return run;
}

/** Record on the run's environment whether its setup last failed (`setup_failed`); written only on a change. */
async function markEnvironmentSetup(deps: ServerDeps, run: Run, failed: boolean): Promise<void> {
  if (!run.environmentId) return;
  const env = await deps.store.getEnvironment(run.teamId, run.environmentId, run.creatorId ?? undefined);
  if (env && env.setupFailed !== failed) await deps.store.updateEnvironment(run.teamId, env.id, { setupFailed: failed }, deps.clock.now());
}

/**
 * The run's secrets (docs/secrets.md "Which runs get which"). Personal secrets
 * go only into code their owner approved: a run on an environment someone
 * else changed last (its setup commands, repos, variables) gets none of its
 * creator's personal secrets; the run is told which were withheld and why.
 */
async function claimedSecrets(deps: ServerDeps, run: Run, env: Environment | null): Promise<ClaimedSecrets> {
  const environmentSecrets = env?.config.secrets ?? [];
  const allowlist = run.config.secrets ?? environmentSecrets;
  const explicitAuth = run.config.harnessAuthSecrets?.[run.config.harness.type];
  if (allowlist.length === 0 && explicitAuth === undefined) return { env: {}, setup_env: {}, unknown: [] };
  const scheduled = run.source === 'SCHEDULED_AGENT';
  const withholdPersonal = env !== null && env.updatedBy !== run.creatorId;
  const sealed = await deps.store.secrets.sealedFor(run.teamId, scheduled ? null : run.creatorId);
  // Harness keys (claude-api-key, codex-api-key) are the model proxy's, never a variable: out of the allowlist, into harness_auth.
  const keys = harnessKeys({ sealed, creatorId: run.creatorId, scheduled, withholdPersonal, harness: run.config.harness.type, allowlist, explicit: explicitAuth });
  if (!keys.ok) return { error: { message: keys.message, reason: keys.reason } };
  // Registry credentials are the image pull's, never a variable either.
  const registry = registryAuth({ sealed, creatorId: run.creatorId, scheduled, withholdPersonal, allowlist });
  if (!registry.ok) return { error: { message: registry.message, reason: registry.reason } };
  const kept = (name: string): boolean => !keys.isHarnessKey(name) && !registry.isRegistryAuth(name);
  const open = (secret: SealedSecret): string =>
    deps.envelope.open({ teamId: secret.teamId, ownerUserId: secret.scope.type === 'user' ? secret.scope.userId : '', name: secret.name }, secret);
  const registryCredentials = registry.secret ? parseRegistryAuth(open(registry.secret)) : null;
  const harnessAuthSecret = keys.authSecret;
  const resolution = resolveSecrets({
    sealed,
    creatorId: run.creatorId,
    scheduled,
    withholdPersonal,
    environmentSecrets: environmentSecrets.filter(kept),
    runSecrets: run.config.secrets?.filter(kept),
    open,
    ...(harnessAuthSecret !== undefined ? { harnessAuthSecret } : {}),
  });
  if (resolution.ok && resolution.withheld.length > 0 && env) {
    const editor = env.updatedBy ? ((await deps.store.getUser(env.updatedBy))?.email ?? env.updatedBy) : null;
    const message =
      `Personal secrets not given to this run: ${resolution.withheld.join(', ')}. The environment ${env.name} was last changed by ` +
      `${editor ?? 'someone else (before Oz recorded who)'}, not by the run's creator, so its setup commands are not yours to trust with them; ` +
      'a team secret of the same name is used if there is one. Save the environment yourself (PATCH) to give your runs on it your personal secrets again.';
    await deps.store.appendRunEvents(run.id, [{ type: 'notice', at: deps.clock.now(), data: { level: 'warn', message, reason: 'personal_secrets_withheld' } }]);
    deps.hub.publish(run.id);
  }
  return resolution.ok
    ? {
        env: resolution.env,
        setup_env: resolution.setupEnv,
        unknown: resolution.unknown,
        ...(resolution.harnessAuth !== undefined ? { harness_auth: resolution.harnessAuth } : {}),
        ...(resolution.harnessAuth !== undefined && keys.baseUrl !== undefined ? { harness_auth_base_url: keys.baseUrl } : {}),
        ...(registryCredentials ? { registry_auth: registryCredentials } : {}),
      }
    : { error: { message: resolution.message, reason: resolution.reason } };
}

/**
 * The claimed runs as the worker gets them. A run whose hand-over fails (its
 * secrets cannot be opened, its environment row is unreadable) ends ERROR on
 * its own, so the others of the claim still reach the worker instead of all
 * waiting out their leases.
 */
async function handOver(deps: ServerDeps, claimed: readonly Run[]): Promise<ClaimedRun[]> {
  const results = await Promise.allSettled(claimed.map((run) => toClaimed(deps, run)));
  const runs: ClaimedRun[] = [];
  for (const [i, result] of results.entries()) {
    const run = claimed[i] as Run;
    if (result.status === 'fulfilled') {
      runs.push(result.value);
      continue;
    }
    deps.logger.error({ err: result.reason, runId: run.id }, 'cannot hand a claimed run to its worker; ending it ERROR');
    const at = deps.clock.now();
    await deps.store
      .transitionRun({
        runId: run.id,
        from: run.state,
        to: 'ERROR',
        by: 'server',
        at,
        leaseToken: run.leaseToken ?? undefined,
        statusMessage: { message: 'The server could not prepare this run for its worker.', error_code: 'internal_error', retryable: true, reason: 'claim_handover_failed' },
      })
      .then(
        () => deps.hub.publish(run.id),
        (error: unknown) => deps.logger.error({ err: error, runId: run.id }, 'cannot end the run either; its lease will expire'),
      );
  }
  // Measured last, after every hand-over and every failed one's write: what is left of each lease as the answer leaves.
  const now = deps.clock.now();
  return runs.map((run) => ({ ...run, lease_valid_for_ms: Math.max(0, run.lease_expires_at - now) }));
}

/** What the worker calls: the model resolved at creation; a run stored before the catalog has provider/model in `modelId` itself. */
function claimedModel(run: Run): string | null {
  if (run.config.model !== undefined) return run.config.model;
  const id = run.config.modelId;
  return id !== undefined && PROVIDER_MODEL_PATTERN.test(id) ? id : null;
}

/** The run's network, with the presets expanded from this server's (an operator's change reaches the next claim). */
function claimedNetwork(deps: ServerDeps, env: Environment | null): ClaimedNetwork {
  const settings = deps.network ?? DEFAULT_NETWORK_SETTINGS;
  const config = env?.config;
  const policy = config?.network ?? settings.defaultPolicy;
  const { rules, unknownPresets } = expandRules(config?.allowDomains ?? [], config ? (config.allowPresets ?? []) : settings.defaultPresets, settings.presets);
  return { policy, allow: rules.map(formatDomainRule), internal_ranges: config?.allowInternalRanges ?? [], unknown_presets: unknownPresets };
}

async function toClaimed(deps: ServerDeps, run: Run): Promise<ClaimedRun> {
  const env = run.environmentId ? await deps.store.getEnvironment(run.teamId, run.environmentId, run.creatorId ?? undefined) : null;
  const secrets = await claimedSecrets(deps, run, env);
  // The limits it runs with, resolved here: the environment's (else the team's defaults), capped by the team's current ceilings.
  const team = await deps.store.getTeam(run.teamId);
  const limits = effectiveRunLimits(teamLimits(deps, team ?? { limitCeilings: {} }), env?.config.limits ?? {}, run.config.maxRuntimeMs);
  return {
    run_id: run.id,
    network: claimedNetwork(deps, env),
    team_id: run.teamId,
    attempt: run.attempt,
    lease_token: run.leaseToken ?? '',
    lease_expires_at: run.leaseExpiresAt ?? 0,
    lease_ttl_ms: deps.leaseTtlMs,
    prompt: run.prompt,
    title: run.title,
    harness: run.config.harness,
    model_id: claimedModel(run),
    max_runtime_ms: limits.maxRuntimeMs,
    max_steps: run.config.maxSteps ?? null,
    max_tokens: run.config.maxTokens ?? null,
    // Every claimed environment has the list (a row stored before maintenance commands existed has none).
    environment: env ? { id: env.id, name: env.name, ...env.config, maintenanceCommands: env.config.maintenanceCommands ?? [] } : null,
    limits,
    cancel_requested: run.cancelRequestedAt !== null,
    schedule_id: run.schedule?.scheduleId ?? null,
    parent_run_id: run.parentRunId,
    // Only when the run asked for a cold start: absent, the worker may restore the environment's snapshot.
    ...(run.config.snapshot === false ? { snapshot: false } : {}),
    ...(await followupHandover(deps, run, env)),
    secrets,
  };
}

/**
 * The worker protocol (src/core/worker-protocol.ts). Claims long-poll on the
 * event hub's "claimable" wake-up; control long-polls on the run's own.
 */
export function workerProtocolRoutes(deps: ServerDeps, runs: RunService, aborts: Set<AbortController>) {
  return async (app: FastifyInstance): Promise<void> => {
    app.decorateRequest('worker', null);
    app.addHook('onRequest', authenticateWorker(deps));
    const r = app.withTypeProvider<ZodTypeProvider>();

    // Per response, not per socket: a keep-alive socket serves many polls, and
    // a listener on it per poll would pile up for as long as the worker lives.
    const closeSignal = (reply: FastifyReply): AbortController => {
      const abort = new AbortController();
      aborts.add(abort);
      reply.raw.once('close', () => abort.abort());
      return abort;
    };

    r.post(
      '/claim',
      {
        schema: {
          body: claimRequestSchema,
          response: { 200: claimResponseSchema },
          summary: 'Claim runs (long-poll)',
          tags: ['worker protocol'],
        },
      },
      async (request, reply) => {
        const { worker_id, max_runs, wait_ms, worker } = request.body;
        // Recorded on every poll (`oz worker list`; admission and the waiting messages count the workers seen lately).
        if (worker) await deps.store.workers.record({ id: worker_id, ...worker, tokenName: request.worker?.name ?? null }, deps.clock.now());
        const routing = worker ? { workerName: worker.name, workerLabels: worker.labels } : {};
        const deadline = Date.now() + wait_ms;
        const abort = closeSignal(reply);
        try {
          for (;;) {
            const claimed = await deps.store.claimRuns({ workerId: worker_id, limit: max_runs, leaseTtlMs: deps.leaseTtlMs, at: deps.clock.now(), ...routing });
            for (const run of claimed) deps.hub.publish(run.id);
            const left = deadline - Date.now();
            if (claimed.length > 0 || left <= 0 || abort.signal.aborted) {
              return { runs: await handOver(deps, claimed) };
            }
            await deps.hub.waitClaimable(Math.min(left, deps.eventPollMs ?? settingDefault('eventPollMs')), abort.signal);
          }
        } finally {
          aborts.delete(abort);
        }
      },
    );

    r.post(
      '/runs/:runId/start',
      { schema: { params, body: leaseRequestSchema, response: { 200: startResponseSchema }, summary: 'The harness started', tags: ['worker protocol'] } },
      async (request) => {
        const run = await heldRun(deps, request.params.runId, request.body.lease_token);
        if (run.state === 'CLAIMED') {
          const now = deps.clock.now();
          await deps.store.transitionRun({ runId: run.id, from: 'CLAIMED', to: 'INPROGRESS', by: 'worker', at: now, leaseToken: request.body.lease_token, leaseLiveAt: now });
          deps.hub.publish(run.id);
          await markEnvironmentSetup(deps, run, false); // the harness starts after setup succeeded
        }
        return { cancel_requested: run.cancelRequestedAt !== null };
      },
    );

    r.post(
      '/runs/:runId/heartbeat',
      { schema: { params, body: leaseRequestSchema, response: { 200: heartbeatResponseSchema }, summary: 'Renew the lease', tags: ['worker protocol'] } },
      async (request) => {
        const now = deps.clock.now();
        const renewed = await deps.store.renewLease(request.params.runId, request.body.lease_token, deps.leaseTtlMs, now);
        if (!renewed) throw conflict(`run ${request.params.runId}: lease token is stale or expired`, 'stale_lease');
        const run = await deps.store.getRunById(request.params.runId);
        // The worker is still there, though it may not poll for claims while its slots are full.
        if (run?.workerId) await deps.store.workers.touch(run.workerId, now);
        return { lease_expires_at: run?.leaseExpiresAt ?? now + deps.leaseTtlMs, cancel_requested: run?.cancelRequestedAt != null };
      },
    );

    r.get(
      '/runs/:runId/control',
      {
        schema: {
          params,
          querystring: controlQuerySchema,
          response: { 200: controlResponseSchema },
          summary: 'Wait for a cancel request (long-poll)',
          tags: ['worker protocol'],
        },
      },
      async (request, reply) => {
        const deadline = Date.now() + request.query.wait_ms;
        const abort = closeSignal(reply);
        try {
          for (;;) {
            const run = await heldRun(deps, request.params.runId, request.query.lease_token);
            const left = deadline - Date.now();
            // A worker that names the last follow-up it has is woken by the next one too.
            const after = request.query.after;
            const followups = after === undefined ? [] : await deps.store.followups.list(run.id, after);
            if (run.cancelRequestedAt !== null || followups.length > 0 || left <= 0 || abort.signal.aborted) {
              return {
                cancel_requested: run.cancelRequestedAt !== null,
                ...(after !== undefined ? { followups: followups.map((f) => ({ seq: f.seq, message: f.message })) } : {}),
              };
            }
            await deps.hub.wait(run.id, Math.min(left, deps.eventPollMs ?? settingDefault('eventPollMs')), abort.signal);
          }
        } finally {
          aborts.delete(abort);
        }
      },
    );

    r.post(
      '/runs/:runId/followups/delivered',
      {
        schema: {
          params,
          body: followupsDeliveredRequestSchema,
          response: { 204: noContentSchema },
          summary: 'The agent has the follow-ups through a number',
          tags: ['worker protocol'],
        },
      },
      async (request, reply) => {
        await heldRun(deps, request.params.runId, request.body.lease_token);
        await deps.store.followups.markDelivered(request.params.runId, request.body.lease_token, request.body.through);
        return reply.code(204).send();
      },
    );

    r.get(
      '/runs/:runId/history',
      {
        schema: {
          params,
          querystring: leaseRequestSchema,
          response: { 200: historyResponseSchema },
          summary: "The conversation of the run's earlier executions",
          tags: ['worker protocol'],
        },
      },
      async (request) => {
        const run = await heldRun(deps, request.params.runId, request.query.lease_token);
        return conversationHistory(deps, run);
      },
    );

    // A workspace snapshot is a tar of plain bytes, bounded by the deployment's setting.
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: followupSettings(deps).workspaceMaxBytes }, (_request, body, done) => done(null, body));
    r.put(
      '/runs/:runId/workspace',
      {
        bodyLimit: followupSettings(deps).workspaceMaxBytes,
        schema: { params, querystring: workspaceQuerySchema, response: { 204: noContentSchema }, summary: 'Keep the workspace the execution leaves', tags: ['worker protocol'] },
      },
      async (request, reply) => {
        const run = await heldRun(deps, request.params.runId, request.query.lease_token);
        if (!Buffer.isBuffer(request.body)) throw new OzError('invalid_request', 'body: must be application/octet-stream (a tar)', { reason: 'body' });
        const heads = request.query.heads ? request.query.heads.split(',') : [];
        await deps.store.followups.putWorkspaceSnapshot(run.id, request.query.lease_token, run.execution, request.body, heads, deps.clock.now());
        return reply.code(204).send();
      },
    );
    r.get(
      '/runs/:runId/workspace',
      {
        schema: {
          params,
          querystring: workspaceQuerySchema,
          response: { 200: workspaceTarSchema },
          summary: 'The workspace the last execution left',
          tags: ['worker protocol'],
        },
      },
      async (request, reply) => {
        const run = await heldRun(deps, request.params.runId, request.query.lease_token);
        const data = await deps.store.followups.workspaceSnapshotData(run.id);
        if (!data) throw notFound('workspace snapshot', run.id);
        return reply.type('application/octet-stream').send(data);
      },
    );

    r.post(
      '/runs/:runId/diffs',
      {
        bodyLimit: DIFFS_BODY_LIMIT,
        schema: { params, body: diffsRequestSchema, response: { 204: noContentSchema }, summary: "The patches of the run's changes it published", tags: ['worker protocol'] },
      },
      async (request, reply) => {
        await deps.store.followups.putDiffs(request.params.runId, request.body.lease_token, request.body.diffs, deps.clock.now());
        return reply.code(204).send();
      },
    );

    r.post(
      '/runs/:runId/idle/release',
      { schema: { params, body: leaseRequestSchema, response: { 204: noContentSchema }, summary: "The ended execution's idle sandbox is gone", tags: ['worker protocol'] } },
      async (request, reply) => {
        const run = await deps.store.getRunById(request.params.runId);
        if (run && run.leaseToken === request.body.lease_token && run.workerId) {
          await deps.store.followups.releaseIdle(run.id, run.workerId);
          await runs.admit(run.teamId);
        }
        return reply.code(204).send();
      },
    );

    r.post(
      '/idle',
      { schema: { body: idleRequestSchema, response: { 200: idleResponseSchema }, summary: 'Which idle sandboxes the worker may keep', tags: ['worker protocol'] } },
      async (request) => {
        const keep = await deps.store.followups.idleHeldBy(request.body.worker_id, request.body.run_ids, deps.clock.now());
        await deps.store.workers.touch(request.body.worker_id, deps.clock.now());
        return { keep };
      },
    );

    r.post(
      '/runs/:runId/events',
      {
        // Batches are capped well below this by the worker (by serialized size); a larger one is a 413.
        bodyLimit: EVENT_BATCH_BODY_LIMIT,
        schema: {
          params,
          body: eventBatchRequestSchema,
          response: { 200: eventBatchResponseSchema },
          summary: 'Append a numbered batch of events (idempotent)',
          tags: ['worker protocol'],
        },
      },
      async (request) => {
        const { lease_token, batch_no, events } = request.body;
        if (events.some((e) => e.type === 'state')) throw conflict('events: state events are written by transitions only', 'events');
        const result = await deps.store.appendRunEventBatch(request.params.runId, lease_token, batch_no, events, deps.clock.now());
        deps.hub.publish(request.params.runId);
        // A retried batch was recorded the first time; what it reports about snapshots too.
        if (!result.duplicate) await recordSnapshotReports(deps, request.params.runId, events);
        return { first_seq: result.firstSeq, count: result.count, duplicate: result.duplicate };
      },
    );

    r.post(
      '/runs/:runId/finish',
      {
        schema: {
          params,
          body: finishRequestSchema,
          response: { 200: finishResponseSchema },
          summary: 'Finish a run',
          tags: ['worker protocol'],
        },
      },
      async (request) => {
        const { lease_token, state, status_message, usage, followups_through, idle_for_ms, network_audit } = request.body;
        const current = await deps.store.getRunById(request.params.runId);
        if (!current) throw notFound('run', request.params.runId);
        // A retried finish (the first answer was lost) is acknowledged.
        if (isTerminal(current.state) && current.leaseToken === lease_token && current.state === state) return { state };
        const run = await heldRun(deps, request.params.runId, lease_token);
        // What the agent had, recorded under the lease before it goes: a follow-up after this starts the next execution.
        if (followups_through !== undefined) await deps.store.followups.markDelivered(run.id, lease_token, followups_through);
        const now = deps.clock.now();
        await deps.store.transitionRun({
          runId: run.id,
          from: run.state,
          to: state,
          by: 'worker',
          at: now,
          leaseToken: lease_token,
          leaseLiveAt: now,
          ...(status_message ? { statusMessage: status_message } : {}),
          // The run's usage is its executions' together; the execution keeps its own.
          ...(usage ? { usage: run.execution > 1 ? (addUsage(run.usage, usage) ?? usage) : usage, executionUsage: usage } : {}),
          // Likewise its network audit: each execution's added to the earlier ones', bounded.
          ...(network_audit ? { networkAudit: mergeAudits(run.execution > 1 ? run.networkAudit : null, network_audit) } : {}),
        });
        if (run.workerId) {
          if (idle_for_ms !== undefined && idle_for_ms > 0) await deps.store.followups.holdIdle(run.id, run.workerId, run.execution, now + idle_for_ms);
          else if (run.idleWorkerId !== null) await deps.store.followups.releaseIdle(run.id, run.workerId);
        }
        deps.hub.publish(run.id);
        if (status_message?.error_code === 'environment_setup_failed') await markEnvironmentSetup(deps, run, true);
        // Follow-ups that came as the execution ended, which its agent never had: the next execution takes them now.
        await runs.continueUndelivered(run.id);
        await runs.admit(run.teamId);
        return { state };
      },
    );
  };
}
