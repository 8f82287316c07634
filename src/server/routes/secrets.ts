import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { envName, noContentSchema } from '../../api/common.js';
import { createSecretSchema, listSecretsResponseSchema, patchSecretSchema, secretItemSchema, secretScopeQuery } from '../../api/secrets.js';
import { notFound, OzError } from '../../core/errors.js';
import type { Scope } from '../../core/environment.js';
import { BASE_URL_TYPES, isHarnessKeyType, parseRegistryAuth, REGISTRY_AUTH_TYPE, SECRET_MAX_ENTRY_BYTES, secretVariable, type SecretType } from '../../core/secret.js';
import { principalOf } from '../auth.js';
import type { ServerDeps } from '../deps.js';
import { presentSecret } from '../presenters/secret.js';

/** `NAME=value` of the variable the secret becomes must stay under 128 KiB. */
function checkSize(variable: string, value: string): void {
  if (Buffer.byteLength(`${variable}=${value}`) >= SECRET_MAX_ENTRY_BYTES) {
    throw new OzError('invalid_request', `value: ${variable}=value must be under ${SECRET_MAX_ENTRY_BYTES / 1024} KiB`, { reason: 'value' });
  }
}

/** A `registry-auth` value must be `registry/username:password` (the worker sends the credentials to that registry only). */
function checkValue(type: SecretType, value: string | undefined): void {
  if (type === REGISTRY_AUTH_TYPE && (value === undefined || parseRegistryAuth(value) === null)) {
    throw new OzError(
      'invalid_request',
      'value: a registry-auth secret is registry/username:password (the registry host[:port], a slash, the user name, a colon, the password or token; one line), e.g. ghcr.io/octocat:TOKEN',
      { reason: 'value' },
    );
  }
}

/** `base_url` belongs to the types that name an upstream (a `codex-api-key`). */
function checkBaseUrl(type: SecretType, given: boolean): void {
  if (given && !BASE_URL_TYPES.includes(type)) {
    throw new OzError('invalid_request', `base_url: only a secret of type ${BASE_URL_TYPES.join(', ')} has one (this one is ${type})`, { reason: 'base_url' });
  }
}

/**
 * Managed secrets (ours; `oz secret`): create, list, get, update, delete by
 * name within a scope (`?scope=team|personal`). Values go in, sealed, and
 * never come out: responses carry metadata only.
 */
export function secretRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const params = z.object({ name: envName });
    const scopeOf = (scope: 'team' | 'personal', userId: string): Scope => (scope === 'personal' ? { type: 'user', userId } : { type: 'team' });
    const identity = (teamId: string, scope: Scope, name: string) => ({ teamId, ownerUserId: scope.type === 'user' ? scope.userId : '', name });

    r.get(
      '/secrets',
      { schema: { response: { 200: listSecretsResponseSchema }, summary: "List the team's secrets and your personal ones (never their values)", tags: ['secrets'] } },
      async (request) => {
        const { team, user } = principalOf(request);
        return { secrets: (await deps.store.secrets.list(team.id, user.id)).map(presentSecret) };
      },
    );

    r.post(
      '/secrets',
      { schema: { body: createSecretSchema, response: { 201: secretItemSchema }, summary: 'Create a secret (its value is never readable again)', tags: ['secrets'] } },
      async (request, reply) => {
        const { team, user } = principalOf(request);
        const body = request.body;
        const scope: Scope = body.team === false ? { type: 'user', userId: user.id } : { type: 'team' };
        const type = body.type ?? 'raw-value';
        checkSize(secretVariable({ name: body.name, type }), body.value);
        checkValue(type, body.value);
        checkBaseUrl(type, body.base_url !== undefined);
        const sealed = deps.envelope.seal(identity(team.id, scope, body.name), body.value);
        const secret = await deps.store.secrets.create(
          {
            teamId: team.id,
            scope,
            name: body.name,
            type,
            description: body.description ?? null,
            setupOnly: body.setup_only ?? false,
            ...(body.base_url !== undefined ? { baseUrl: body.base_url } : {}),
            ...sealed,
          },
          deps.clock.now(),
        );
        return reply.status(201).send(presentSecret(secret));
      },
    );

    r.get(
      '/secrets/:name',
      { schema: { params, querystring: secretScopeQuery, response: { 200: secretItemSchema }, summary: 'Get a secret (metadata)', tags: ['secrets'] } },
      async (request) => {
        const { team, user } = principalOf(request);
        const secret = await deps.store.secrets.get(team.id, scopeOf(request.query.scope, user.id), request.params.name);
        if (!secret) throw notFound('secret', request.params.name);
        return presentSecret(secret);
      },
    );

    r.patch(
      '/secrets/:name',
      {
        schema: {
          params,
          querystring: secretScopeQuery,
          body: patchSecretSchema,
          response: { 200: secretItemSchema },
          summary: 'Update a secret: value, type, description, setup-only, base URL',
          tags: ['secrets'],
        },
      },
      async (request) => {
        const { team, user } = principalOf(request);
        const scope = scopeOf(request.query.scope, user.id);
        const { name } = request.params;
        const current = await deps.store.secrets.get(team.id, scope, name);
        if (!current) throw notFound('secret', name);
        const body = request.body;
        const type = body.type ?? current.type;
        // A harness key never enters a sandbox and is sent only to its base URL: whoever redirects it
        // or turns it into a plain variable must know the key, not just be on the team.
        // Registry credentials likewise never become a variable without their value given again.
        const guarded = (t: SecretType): boolean => isHarnessKeyType(t) || t === REGISTRY_AUTH_TYPE;
        const movesKey = body.base_url !== undefined || (body.type !== undefined && body.type !== current.type && (guarded(current.type) || guarded(body.type)));
        if (movesKey && body.value === undefined) {
          throw new OzError('invalid_request', `value: required to change the base_url or the type of ${name}, a harness key or registry credentials (give the value again)`, {
            reason: 'value',
          });
        }
        if (body.value !== undefined) checkSize(secretVariable({ name, type }), body.value);
        // A secret turned into registry credentials needs a value of their form.
        if (body.value !== undefined || (type === REGISTRY_AUTH_TYPE && current.type !== REGISTRY_AUTH_TYPE)) checkValue(type, body.value);
        checkBaseUrl(type, typeof body.base_url === 'string');
        // A type that has no upstream keeps none (a codex key turned raw-value drops its base_url).
        const baseUrl = body.base_url !== undefined ? body.base_url : !BASE_URL_TYPES.includes(type) && current.baseUrl !== undefined ? null : undefined;
        const updated = await deps.store.secrets.update(
          team.id,
          scope,
          name,
          {
            ...(body.type !== undefined ? { type: body.type } : {}),
            ...(body.description !== undefined ? { description: body.description } : {}),
            ...(body.setup_only !== undefined ? { setupOnly: body.setup_only } : {}),
            ...(baseUrl !== undefined ? { baseUrl } : {}),
            ...(body.value !== undefined ? { sealed: deps.envelope.seal(identity(team.id, scope, name), body.value) } : {}),
          },
          deps.clock.now(),
        );
        if (!updated) throw notFound('secret', name);
        return presentSecret(updated);
      },
    );

    r.delete(
      '/secrets/:name',
      { schema: { params, querystring: secretScopeQuery, response: { 204: noContentSchema }, summary: 'Delete a secret', tags: ['secrets'] } },
      async (request, reply) => {
        const { team, user } = principalOf(request);
        const deleted = await deps.store.secrets.delete(team.id, scopeOf(request.query.scope, user.id), request.params.name);
        if (!deleted) throw notFound('secret', request.params.name);
        return reply.status(204).send();
      },
    );
  };
}
