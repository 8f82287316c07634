import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idParam } from '../../api/common.js';
import type { LimitsBody } from '../../api/environments.js';
import {
  createdApiKeySchema,
  createdWorkerTokenSchema,
  createTeamSchema,
  createUserSchema,
  createWorkerTokenSchema,
  expireApiKeyResponseSchema,
  listApiKeysResponseSchema,
  listTeamsResponseSchema,
  listUsersResponseSchema,
  listWorkersResponseSchema,
  listWorkerTokensResponseSchema,
  meResponseSchema,
  newKeySchema,
  patchTeamSchema,
  revokeWorkerTokenResponseSchema,
  teamItemSchema,
  userItemSchema,
  type ApiKeyItem,
  type CreatedApiKey,
  type TeamItem,
  type UserItem,
  type WorkerItem,
  type WorkerTokenItem,
} from '../../api/identity.js';
import { WORKER_SEEN_WINDOW_MS } from '../../core/worker-pool.js';
import type { ListedWorker } from '../../store/worker-repository.js';
import { toRfc3339 } from '../../core/clock.js';
import { notFound, OzError } from '../../core/errors.js';
import { limitAbove, type EnvironmentLimits } from '../../core/environment.js';
import type { ApiKey, Team, User, WorkerToken } from '../../core/identity.js';
import { principalOf, requireAdmin, type Principal } from '../auth.js';
import { API_KEY_PREFIX, mintCredential, WORKER_TOKEN_PREFIX } from '../credentials.js';
import type { ServerDeps } from '../deps.js';
import { toLimits } from '../environment-service.js';
import { teamLimits } from '../limits.js';
import { presentLimits } from '../presenters/environment.js';

export const presentTeam = (t: Team): TeamItem => ({
  uid: t.id,
  name: t.name,
  max_concurrent_runs: t.maxConcurrentRuns,
  limit_ceilings: presentLimits(t.limitCeilings),
  platform: t.platform,
  created_at: toRfc3339(t.createdAt),
});

/**
 * Admins of the platform team (the deployment's first, made by `oz server`
 * on first start) administer the deployment: teams, their ceilings, worker
 * tokens, and users and keys of any team. Admins of any other team manage
 * the users and keys of their own team only (docs/api.md "Admins").
 */
function requirePlatformAdmin(request: FastifyRequest): Principal {
  const principal = requireAdmin(request);
  if (!principal.team.platform) {
    throw new OzError('not_authorized', `this operation needs an admin of the platform team; admins of ${principal.team.name} manage their own team's users and keys only`);
  }
  return principal;
}

/** A team by name or uid, for an admin: another team is invisible (404) unless the caller administers the platform. */
async function teamFor(deps: ServerDeps, principal: Principal, ref: string, field: string): Promise<Team> {
  const team = (await deps.store.getTeamByName(ref)) ?? (await deps.store.getTeam(ref));
  if (!team || (!principal.team.platform && team.id !== principal.team.id)) throw new OzError('resource_not_found', `${field}: team ${ref} not found`, { reason: field });
  return team;
}

/** A team's own ceilings, in the API's units; none may exceed the operator's (it would have no effect). */
function ceilingsFrom(deps: ServerDeps, body: LimitsBody | null | undefined): EnvironmentLimits | undefined {
  if (body === undefined) return undefined;
  const ceilings = body === null ? {} : toLimits(body);
  const above = limitAbove(ceilings, teamLimits(deps, { limitCeilings: {} }).maxima);
  if (above) {
    const field = `limit_ceilings.${above.api}`;
    throw new OzError('invalid_request', `${field}: ${above.value} is above the operator's maximum of ${above.max} (OZ_SANDBOX_MAX_*); a team's ceilings can only lower it`, {
      reason: field,
    });
  }
  return ceilings;
}

export const presentUser = (u: User): UserItem => ({
  uid: u.id,
  team_uid: u.teamId,
  email: u.email,
  display_name: u.displayName,
  role: u.role,
  created_at: toRfc3339(u.createdAt),
});
const presentKey = (k: ApiKey, now: number): ApiKeyItem => ({
  uid: k.id,
  name: k.name,
  prefix: k.prefix,
  user_uid: k.userId,
  created_at: toRfc3339(k.createdAt),
  expires_at: k.expiresAt === null ? null : toRfc3339(k.expiresAt),
  expired: k.expiresAt !== null && k.expiresAt <= now,
});
const presentWorkerToken = (t: WorkerToken): WorkerTokenItem => ({
  uid: t.id,
  name: t.name,
  prefix: t.prefix,
  created_at: toRfc3339(t.createdAt),
  revoked_at: t.revokedAt === null ? null : toRfc3339(t.revokedAt),
});

const presentWorker = (w: ListedWorker, now: number): WorkerItem => ({
  id: w.id,
  name: w.name,
  labels: [...w.labels],
  backend: w.backend,
  capacity: w.capacity,
  running_runs: w.runningRuns,
  version: w.version,
  token_name: w.tokenName,
  first_seen_at: toRfc3339(w.firstSeenAt),
  last_seen_at: toRfc3339(w.lastSeenAt),
  online: w.lastSeenAt > now - WORKER_SEEN_WINDOW_MS,
});

/** Mint a key for a user; the secret is in this response only. */
async function issueKey(deps: ServerDeps, user: User, name: string, expiresInSeconds: number | null | undefined): Promise<CreatedApiKey> {
  const now = deps.clock.now();
  const minted = mintCredential(API_KEY_PREFIX);
  const key = await deps.store.createApiKey(
    {
      teamId: user.teamId,
      userId: user.id,
      name,
      prefix: minted.prefix,
      secretHash: minted.secretHash,
      expiresAt: expiresInSeconds ? now + expiresInSeconds * 1000 : null,
    },
    now,
  );
  return { ...presentKey(key, now), key: minted.secret };
}

/** Who am I, my API keys, and the admin surface (teams, users, their keys, worker tokens, workers). */
export function identityRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();

    r.get('/me', { schema: { response: { 200: meResponseSchema }, summary: 'The caller: user, team and key', tags: ['identity'] } }, async (request) => {
      const { user, team, key } = principalOf(request);
      const limits = teamLimits(deps, team);
      return {
        user: presentUser(user),
        team: presentTeam(team),
        api_key: presentKey(key, deps.clock.now()),
        // What the team's environments and runs get where they set nothing, and the most they may set.
        limits: { defaults: presentLimits(limits.defaults), maxima: presentLimits(limits.maxima) },
      };
    });

    r.post(
      '/api-keys',
      { schema: { body: newKeySchema, response: { 201: createdApiKeySchema }, summary: 'Create an API key for yourself (shown once)', tags: ['identity'] } },
      async (request, reply) => {
        const { user } = principalOf(request);
        return reply.status(201).send(await issueKey(deps, user, request.body.name, request.body.expires_in_seconds));
      },
    );

    r.get('/api-keys', { schema: { response: { 200: listApiKeysResponseSchema }, summary: 'Your API keys (never their secrets)', tags: ['identity'] } }, async (request) => {
      const { user, team } = principalOf(request);
      const now = deps.clock.now();
      return { api_keys: (await deps.store.listApiKeys(team.id, user.id)).map((k) => presentKey(k, now)) };
    });

    r.post(
      '/api-keys/:keyId/expire',
      { schema: { params: z.object({ keyId: idParam }), response: { 200: expireApiKeyResponseSchema }, summary: 'Expire one of your API keys now', tags: ['identity'] } },
      async (request) => {
        const { user, team } = principalOf(request);
        const own = (await deps.store.listApiKeys(team.id, user.id)).find((k) => k.id === request.params.keyId);
        if (!own || !(await deps.store.expireApiKey(team.id, own.id, deps.clock.now()))) throw notFound('API key', request.params.keyId);
        return { uid: own.id, expired: true };
      },
    );

    r.post(
      '/admin/teams',
      {
        schema: {
          body: createTeamSchema,
          response: { 201: teamItemSchema },
          summary: 'Create a team (platform admin)',
          tags: ['admin'],
        },
      },
      async (request, reply) => {
        requirePlatformAdmin(request);
        const limitCeilings = ceilingsFrom(deps, request.body.limit_ceilings);
        const team = await deps.store.createTeam(
          {
            name: request.body.name,
            maxConcurrentRuns: request.body.max_concurrent_runs ?? deps.teamMaxConcurrentRuns,
            ...(limitCeilings ? { limitCeilings } : {}),
          },
          deps.clock.now(),
        );
        return reply.status(201).send(presentTeam(team));
      },
    );

    r.get(
      '/admin/teams',
      { schema: { response: { 200: listTeamsResponseSchema }, summary: 'List teams (admin: your own; platform admin: every team)', tags: ['admin'] } },
      async (request) => {
        const principal = requireAdmin(request);
        const teams = principal.team.platform ? await deps.store.listTeams() : [principal.team];
        return { teams: teams.map(presentTeam) };
      },
    );

    r.get(
      '/admin/users',
      {
        schema: {
          querystring: z.object({ team: idParam.describe('team uid or name; default your own').optional() }).strict(),
          response: { 200: listUsersResponseSchema },
          summary: "List a team's users (admin: your own team; platform admin: any)",
          tags: ['admin'],
        },
      },
      async (request) => {
        const principal = requireAdmin(request);
        const team = request.query.team === undefined ? principal.team : await teamFor(deps, principal, request.query.team, 'query.team');
        return { users: (await deps.store.listUsers(team.id)).map(presentUser) };
      },
    );

    const teamParams = z.object({ teamId: idParam.describe('team uid or name') });
    r.get(
      '/admin/teams/:teamId',
      { schema: { params: teamParams, response: { 200: teamItemSchema }, summary: 'Get a team (admin: your own; platform admin: any)', tags: ['admin'] } },
      async (request) => presentTeam(await teamFor(deps, requireAdmin(request), request.params.teamId, 'path.teamId')),
    );

    r.patch(
      '/admin/teams/:teamId',
      {
        schema: {
          params: teamParams,
          body: patchTeamSchema,
          response: { 200: teamItemSchema },
          summary: "Change a team's concurrency limit or limit ceilings (platform admin; given fields replace, limit_ceilings null removes them)",
          tags: ['admin'],
        },
      },
      async (request) => {
        const principal = requirePlatformAdmin(request);
        const team = await teamFor(deps, principal, request.params.teamId, 'path.teamId');
        const limitCeilings = ceilingsFrom(deps, request.body.limit_ceilings);
        const updated = await deps.store.updateTeam(team.id, {
          ...(request.body.max_concurrent_runs !== undefined ? { maxConcurrentRuns: request.body.max_concurrent_runs } : {}),
          ...(limitCeilings ? { limitCeilings } : {}),
        });
        if (!updated) throw notFound('team', request.params.teamId);
        return presentTeam(updated);
      },
    );

    r.post(
      '/admin/users',
      {
        schema: {
          body: createUserSchema,
          response: { 201: userItemSchema },
          summary: 'Create a user in a team (admin: your own team; platform admin: any)',
          tags: ['admin'],
        },
      },
      async (request, reply) => {
        const principal = requireAdmin(request);
        const body = request.body;
        const team = await teamFor(deps, principal, body.team, 'team');
        const user = await deps.store.createUser(
          { teamId: team.id, email: body.email.toLowerCase(), displayName: body.display_name ?? null, role: body.role ?? 'member' },
          deps.clock.now(),
        );
        return reply.status(201).send(presentUser(user));
      },
    );

    r.post(
      '/admin/users/:userId/api-keys',
      {
        schema: {
          params: z.object({ userId: idParam }),
          body: newKeySchema,
          response: { 201: createdApiKeySchema },
          summary: "Issue a key for a user (admin of the user's team, or platform admin; shown once)",
          tags: ['admin'],
        },
      },
      async (request, reply) => {
        const principal = requireAdmin(request);
        const user = (await deps.store.getUser(request.params.userId)) ?? (await deps.store.getUserByEmail(request.params.userId.toLowerCase()));
        // An admin of another team cannot mint keys (act as) users of this one.
        if (!user || (!principal.team.platform && user.teamId !== principal.team.id)) throw notFound('user', request.params.userId);
        return reply.status(201).send(await issueKey(deps, user, request.body.name, request.body.expires_in_seconds));
      },
    );

    r.post(
      '/worker-tokens',
      { schema: { body: createWorkerTokenSchema, response: { 201: createdWorkerTokenSchema }, summary: 'Create a worker token (platform admin; shown once)', tags: ['workers'] } },
      async (request, reply) => {
        const { user } = requirePlatformAdmin(request);
        const minted = mintCredential(WORKER_TOKEN_PREFIX);
        const token = await deps.store.createWorkerToken({ name: request.body.name, prefix: minted.prefix, secretHash: minted.secretHash, createdBy: user.id }, deps.clock.now());
        return reply.status(201).send({ ...presentWorkerToken(token), token: minted.secret });
      },
    );

    r.get(
      '/worker-tokens',
      { schema: { response: { 200: listWorkerTokensResponseSchema }, summary: 'List worker tokens (platform admin)', tags: ['workers'] } },
      async (request) => {
        requirePlatformAdmin(request);
        return { worker_tokens: (await deps.store.listWorkerTokens()).map(presentWorkerToken) };
      },
    );

    r.get(
      '/admin/workers',
      {
        schema: {
          response: { 200: listWorkersResponseSchema },
          summary: 'List the workers seen in the last day: name, labels, backend, capacity, runs held, last seen (platform admin)',
          tags: ['workers'],
        },
      },
      async (request) => {
        requirePlatformAdmin(request);
        const now = deps.clock.now();
        return { workers: (await deps.store.workers.list(now)).map((w) => presentWorker(w, now)) };
      },
    );

    r.post(
      '/worker-tokens/:tokenId/revoke',
      {
        schema: {
          params: z.object({ tokenId: idParam }),
          response: { 200: revokeWorkerTokenResponseSchema },
          summary: 'Revoke a worker token (platform admin)',
          tags: ['workers'],
        },
      },
      async (request) => {
        requirePlatformAdmin(request);
        if (!(await deps.store.revokeWorkerToken(request.params.tokenId, deps.clock.now()))) throw notFound('worker token', request.params.tokenId);
        return { uid: request.params.tokenId, revoked: true };
      },
    );
  };
}
