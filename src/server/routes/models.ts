import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { listModelsResponseSchema, type ModelProvider } from '../../api/models.js';
import type { ServerDeps } from '../deps.js';

const PROVIDERS: Record<string, ModelProvider> = { anthropic: 'ANTHROPIC', openai: 'OPENAI', 'openai-compatible': 'UNKNOWN' };

/** The spec's ListModelsResponse over the models this deployment configured. */
export function modelRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get('/agent/models', { schema: { response: { 200: listModelsResponseSchema }, summary: 'Models configured on this server', tags: ['models'] } }, async () => {
      const { defaultModel, models } = deps.models;
      return {
        default_model_id: defaultModel ?? models[0] ?? '',
        models: models.map((id) => {
          const [provider = '', name = id] = id.split('/', 2) as [string?, string?];
          return { id, display_name: name, provider: PROVIDERS[provider] ?? 'UNKNOWN', vision_supported: false };
        }),
      };
    });
  };
}
