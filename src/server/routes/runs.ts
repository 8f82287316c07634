import type { FastifyInstance, FastifyRequest } from 'fastify';
import { emptyCounts } from '../../core/network-audit.js';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idParam } from '../../api/common.js';
import { conversationResponseSchema } from '../../api/conversation.js';
import { listRunsQuerySchema, runAgentRequestSchema, type ListRunsQueryParams } from '../../api/run-requests.js';
import {
  cancelRunResponseSchema,
  followupRequestSchema,
  runDiffResponseSchema,
  runNetworkResponseSchema,
  followupResponseSchema,
  listRunsResponseSchema,
  runAgentResponseSchema,
  runItemSchema,
} from '../../api/runs.js';
import { toRfc3339 } from '../../core/clock.js';
import { notFound, OzError } from '../../core/errors.js';
import type { RunFilters, RunSource } from '../../core/run.js';
import { principalOf } from '../auth.js';
import type { ServerDeps } from '../deps.js';
import { presentConversation } from '../presenters/conversation.js';
import { presentRun } from '../presenters/run-item.js';
import type { RunService } from '../run-service.js';
import { publicBaseUrl } from '../public-url.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The CLI says who it is (docs/api.md: source CLI vs API); a run made through a dashboard session is the spec's WEB_APP. */
function sourceOf(request: FastifyRequest): RunSource {
  if (request.webSession) return 'WEB_APP';
  return request.headers['x-oz-client'] === 'cli' ? 'CLI' : 'API';
}

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!key || !IDEMPOTENCY_KEY.test(key)) {
    throw new OzError('invalid_request', 'Idempotency-Key: must be 1..255 printable ASCII characters without spaces', { reason: 'Idempotency-Key' });
  }
  return key;
}

function toFilters(q: ListRunsQueryParams): RunFilters {
  const ms = (v: string | undefined) => (v === undefined ? undefined : Date.parse(v));
  const filters: RunFilters = {
    states: q.state,
    name: q.name,
    modelId: q.model_id,
    creatorId: q.creator,
    source: q.source,
    executionLocation: q.execution_location,
    createdAfter: ms(q.created_after),
    createdBefore: ms(q.created_before),
    updatedAfter: ms(q.updated_after),
    environmentId: q.environment_id,
    skillSpec: q.skill ?? q.skill_spec,
    scheduleId: q.schedule_id,
    ancestorRunId: q.ancestor_run_id,
    artifactType: q.artifact_type,
    query: q.q,
  };
  return Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
}

export function runRoutes(deps: ServerDeps, runs: RunService) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const runIdParams = z.object({ runId: idParam });

    for (const url of ['/agent/runs', '/agent/run']) {
      r.post(url, { schema: { body: runAgentRequestSchema, response: { 200: runAgentResponseSchema }, summary: 'Run an agent', tags: ['runs'] } }, async (request) => {
        const principal = principalOf(request);
        const key = idempotencyKeyOf(request);
        const { run, atCapacity } = await runs.create(principal, request.body, {
          source: sourceOf(request),
          ...(key !== undefined ? { idempotencyKey: key } : {}),
        });
        return { run_id: run.id, task_id: run.id, state: run.state, at_capacity: atCapacity };
      });
    }

    r.get('/agent/runs', { schema: { querystring: listRunsQuerySchema, response: { 200: listRunsResponseSchema }, summary: 'List runs', tags: ['runs'] } }, async (request) => {
      const principal = principalOf(request);
      const q = request.query;
      if (q.ancestor_run_id !== undefined && !(await deps.store.getRun(principal.team.id, q.ancestor_run_id))) {
        throw new OzError('resource_not_found', `ancestor_run_id: run ${q.ancestor_run_id} not found`, { reason: 'ancestor_run_id' });
      }
      const page = await deps.store.listRuns({
        teamId: principal.team.id,
        filters: toFilters(q),
        sortBy: q.sort_by,
        sortOrder: q.sort_order,
        limit: q.limit,
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      });
      const ids = page.runs.map((run) => run.id);
      const [artifacts, executions] = await Promise.all([deps.store.listRunArtifacts(ids), deps.store.followups.executions(ids)]);
      const at = { baseUrl: publicBaseUrl(request), now: deps.clock.now() };
      return {
        runs: page.runs.map((run) =>
          presentRun(
            run,
            artifacts.filter((a) => a.runId === run.id),
            at,
            executions.filter((e) => e.runId === run.id),
          ),
        ),
        page_info: { has_next_page: page.nextCursor !== null, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) },
      };
    });

    r.get('/agent/runs/:runId', { schema: { params: runIdParams, response: { 200: runItemSchema }, summary: 'Get a run', tags: ['runs'] } }, async (request) => {
      const run = await deps.store.getRun(principalOf(request).team.id, request.params.runId);
      if (!run) throw notFound('run', request.params.runId);
      const [artifacts, executions] = await Promise.all([deps.store.listRunArtifacts([run.id]), deps.store.followups.executions([run.id])]);
      return presentRun(run, artifacts, { baseUrl: publicBaseUrl(request), now: deps.clock.now() }, executions);
    });

    r.get(
      '/agent/runs/:runId/diff',
      { schema: { params: runIdParams, response: { 200: runDiffResponseSchema }, summary: "The patch of a run's changes, per repository", tags: ['runs'] } },
      async (request) => {
        const run = await deps.store.getRun(principalOf(request).team.id, request.params.runId);
        if (!run) throw notFound('run', request.params.runId);
        const diffs = await deps.store.followups.diffs(run.id);
        return {
          diffs: diffs.map((d) => ({
            repository: d.repository,
            execution: d.execution,
            base: d.base,
            head: d.head,
            patch: d.patch,
            bytes: d.bytes,
            truncated: d.truncated,
            created_at: toRfc3339(d.createdAt),
          })),
        };
      },
    );

    r.get(
      '/agent/runs/:runId/network',
      { schema: { params: runIdParams, response: { 200: runNetworkResponseSchema }, summary: "What a run's network did: hosts, bytes, refusals", tags: ['runs'] } },
      async (request) => {
        const run = await deps.store.getRun(principalOf(request).team.id, request.params.runId);
        if (!run) throw notFound('run', request.params.runId);
        const audit = run.networkAudit;
        return { run_id: run.id, policy: audit?.policy ?? null, hosts: audit?.hosts ?? [], other: audit?.other ?? emptyCounts() };
      },
    );

    r.post(
      '/agent/runs/:runId/followups',
      {
        schema: { params: runIdParams, body: followupRequestSchema, response: { 200: followupResponseSchema }, summary: 'Send a follow-up to a run', tags: ['runs'] },
      },
      async (request) => {
        if (request.body.attachments !== undefined) throw new OzError('feature_not_available', 'attachments is not available on this server yet', { reason: 'attachments' });
        const result = await runs.followUp(principalOf(request), request.params.runId, request.body.message);
        return {
          run_id: result.run.id,
          followup: { seq: result.followup.seq, created_at: toRfc3339(result.followup.createdAt) },
          execution: result.run.execution,
          state: result.run.state,
          delivery: result.startedExecution ? ('new_execution' as const) : result.delivery,
        };
      },
    );

    const conversation = async (teamId: string, runId: string) => {
      const run = await deps.store.getRun(teamId, runId);
      if (!run) throw notFound('conversation', runId);
      const events = [];
      for (let after = 0; ;) {
        const page = await deps.store.listRunEvents(runId, after, 1000);
        events.push(...page);
        const last = page[page.length - 1];
        if (!last || page.length < 1000) break;
        after = last.seq;
      }
      return presentConversation(run, events);
    };
    r.get(
      '/agent/runs/:runId/conversation',
      { schema: { params: runIdParams, response: { 200: conversationResponseSchema }, summary: "A run's conversation", tags: ['runs'] } },
      async (request) => conversation(principalOf(request).team.id, request.params.runId),
    );
    r.get(
      '/agent/conversations/:conversationId',
      {
        schema: {
          params: z.object({ conversationId: idParam }),
          response: { 200: conversationResponseSchema },
          summary: 'A conversation (its id is the run id)',
          tags: ['runs'],
        },
      },
      async (request) => conversation(principalOf(request).team.id, request.params.conversationId),
    );

    r.post(
      '/agent/runs/:runId/cancel',
      { schema: { params: runIdParams, response: { 200: cancelRunResponseSchema }, summary: 'Cancel a run', tags: ['runs'] } },
      async (request, reply) => {
        const run = await runs.cancel(principalOf(request), request.params.runId);
        // Serialized here: a string the handler returned would be sent as text/plain.
        return reply.type('application/json').send(JSON.stringify(run.id));
      },
    );
  };
}
