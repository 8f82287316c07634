import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idParam } from '../../api/common.js';
import {
  createEnvironmentSchema,
  deleteEnvironmentResponseSchema,
  environmentItemSchema,
  listEnvironmentsQuerySchema,
  listEnvironmentsResponseSchema,
  patchEnvironmentSchema,
} from '../../api/environments.js';
import { notFound } from '../../core/errors.js';
import { principalOf } from '../auth.js';
import type { ServerDeps } from '../deps.js';
import { checkNetworkFields, configFromCreate, configFromPatch, DEFAULT_NETWORK_SETTINGS } from '../environment-service.js';
import { devcontainerFields } from '../devcontainer/devcontainer-fields.js';
import { teamLimits, refuseAboveMaxima } from '../limits.js';
import { presentEnvironment } from '../presenters/environment.js';

/** The spec's `GET /agent/environments`, and our create / get / patch / delete. */
export function environmentRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const params = z.object({ uid: idParam });

    r.get(
      '/agent/environments',
      { schema: { querystring: listEnvironmentsQuerySchema, response: { 200: listEnvironmentsResponseSchema }, summary: 'List environments', tags: ['environments'] } },
      async (request) => {
        const { team, user } = principalOf(request);
        // The store lists most recently updated first; by name is a sort of that (ties keep it).
        const environments = await deps.store.listEnvironments(team.id, user.id);
        if (request.query.sort_by === 'name') environments.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        const snapshots = new Map(
          (
            await deps.store.environmentSnapshots.list(
              team.id,
              environments.map((e) => e.id),
            )
          ).map((s) => [s.environmentId, s]),
        );
        return { environments: environments.map((env) => presentEnvironment(env, snapshots.get(env.id) ?? null)) };
      },
    );

    r.post(
      '/agent/environments',
      { schema: { body: createEnvironmentSchema, response: { 201: environmentItemSchema }, summary: 'Create an environment', tags: ['environments'] } },
      async (request, reply) => {
        const { team, user } = principalOf(request);
        const body = request.body;
        // Our `devcontainer`: the file's fields, read from GitHub now (the request's own win over them).
        const source = body.devcontainer;
        const network = deps.network ?? DEFAULT_NETWORK_SETTINGS;
        const config = configFromCreate(body, source ? { source, fields: await devcontainerFields(deps, team.id, source) } : undefined, network);
        checkNetworkFields(config, null, network, user.role === 'admin');
        refuseAboveMaxima(config.limits, teamLimits(deps, team).maxima, 'limits.');
        const env = await deps.store.createEnvironment(
          {
            teamId: team.id,
            scope: body.team === false ? { type: 'user', userId: user.id } : { type: 'team' },
            creatorId: user.id,
            name: body.name,
            description: body.description ?? null,
            config,
          },
          deps.clock.now(),
        );
        return reply.status(201).send(presentEnvironment(env, null));
      },
    );

    r.get('/agent/environments/:uid', { schema: { params, response: { 200: environmentItemSchema }, summary: 'Get an environment', tags: ['environments'] } }, async (request) => {
      const { team, user } = principalOf(request);
      const env = await deps.store.getEnvironment(team.id, request.params.uid, user.id);
      if (!env) throw notFound('environment', request.params.uid);
      return presentEnvironment(env, await deps.store.environmentSnapshots.get(team.id, env.id));
    });

    r.patch(
      '/agent/environments/:uid',
      { schema: { params, body: patchEnvironmentSchema, response: { 200: environmentItemSchema }, summary: 'Change an environment', tags: ['environments'] } },
      async (request) => {
        const { team, user } = principalOf(request);
        const current = await deps.store.getEnvironment(team.id, request.params.uid, user.id);
        if (!current) throw notFound('environment', request.params.uid);
        const body = request.body;
        const config = configFromPatch(current.config, body);
        checkNetworkFields(config, current.config, deps.network ?? DEFAULT_NETWORK_SETTINGS, user.role === 'admin');
        if (body.limits !== undefined) refuseAboveMaxima(config.limits, teamLimits(deps, team).maxima, 'limits.');
        const updated = await deps.store.updateEnvironment(
          team.id,
          current.id,
          {
            // Who changed it last decides whether runs on it get personal secrets (docs/secrets.md).
            updatedBy: user.id,
            ...(body.name !== undefined ? { name: body.name } : {}),
            ...(body.description !== undefined ? { description: body.description } : {}),
            config,
          },
          deps.clock.now(),
        );
        if (!updated) throw notFound('environment', request.params.uid);
        return presentEnvironment(updated, await deps.store.environmentSnapshots.get(team.id, updated.id));
      },
    );

    r.delete(
      '/agent/environments/:uid',
      { schema: { params, response: { 200: deleteEnvironmentResponseSchema }, summary: 'Delete an environment', tags: ['environments'] } },
      async (request) => {
        const { team, user } = principalOf(request);
        const current = await deps.store.getEnvironment(team.id, request.params.uid, user.id);
        if (!current || !(await deps.store.deleteEnvironment(team.id, current.id))) throw notFound('environment', request.params.uid);
        return { success: true };
      },
    );
  };
}
