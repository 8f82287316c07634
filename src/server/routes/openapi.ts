import swagger, { type SwaggerTransform, type SwaggerTransformObject } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { OpenAPIV3_1 } from 'openapi-types';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { problemSchema } from '../../api/problem.js';

/** Where the document points at the named schemas of the contract (those with a `meta({ id })`). */
const componentRef = (id: string): string => `#/components/schemas/${id}`;

/**
 * The named schemas of the contract (RunItem, CloudEnvironment, Problem, …)
 * as the document's components, in their output form: responses refer to
 * them by `$ref` (fastify-type-provider-zod does, for any schema with an id).
 */
function contractComponents(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any', cycles: 'ref', reused: 'inline', uri: componentRef });
  // A component's own identity keywords mean nothing inside the document.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $id: _id, $schema: _schema, ...schema }]) => [id, schema]));
}

/** Every documented operation can also answer problem+json (docs/design.md "Errors"). */
const problemResponse = {
  description: 'problem+json: the error, its error_code, whether it is retryable and, where useful, the reason (the field or condition)',
  content: { 'application/problem+json': { schema: { $ref: componentRef(problemSchema.meta()?.id ?? 'Problem') } } },
};

/** The zod schemas of a route as JSON Schema, plus its error answer. */
const documentRoute: SwaggerTransform = (route) => {
  const documented = jsonSchemaTransform(route);
  const schema = documented.schema as { hide?: boolean; response?: Record<string, unknown> };
  if (schema.hide) return documented;
  return { ...documented, schema: { ...documented.schema, response: { ...schema.response, default: problemResponse } } };
};

const withComponents: SwaggerTransformObject = (document) => {
  if (!('openapiObject' in document)) return document.swaggerObject;
  const openapi = document.openapiObject as Partial<OpenAPIV3_1.Document>;
  // zod writes JSON Schema 2020-12, which is what OpenAPI 3.1's schema objects are.
  const schemas = contractComponents() as Record<string, OpenAPIV3_1.SchemaObject>;
  return { ...openapi, components: { ...openapi.components, schemas: { ...openapi.components?.schemas, ...schemas } } };
};

/**
 * The OpenAPI 3.1 document of the API, generated from the routes' zod
 * schemas (src/api) and served at `path`. Registered before the routes: the
 * plugin collects them as they are added.
 */
export async function registerOpenApi(app: FastifyInstance, path: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Oz API',
        version: '1.0.0',
        description: 'Self-hosted Oz: the Oz Agent API v1 plus environments, keys, teams and worker tokens.',
      },
      servers: [{ url: '/' }],
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
    transform: documentRoute,
    transformObject: withComponents,
  });
  app.get(path, { schema: { hide: true } }, async () => app.swagger());
}
