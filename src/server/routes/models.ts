import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { listModelsResponseSchema, type ModelInfo, type ModelProvider } from '../../api/models.js';
import type { ServerDeps } from '../deps.js';
import { modelCatalogOf } from '../model-choice.js';

const PROVIDERS: Record<string, ModelProvider> = { anthropic: 'ANTHROPIC', openai: 'OPENAI', 'openai-compatible': 'UNKNOWN' };

function providerOf(model: string): ModelProvider {
  return PROVIDERS[model.split('/', 1)[0] ?? ''] ?? 'UNKNOWN';
}

/**
 * The spec's ListModelsResponse: every catalog id (what Oz scripts name),
 * then the provider/model ids of `OZ_MODELS` not already listed. The
 * default is `OZ_DEFAULT_MODEL`, else the first listed.
 */
export function modelRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get('/agent/models', { schema: { response: { 200: listModelsResponseSchema }, summary: 'Models a run may name', tags: ['models'] } }, async () => {
      const catalog = modelCatalogOf(deps);
      const models: ModelInfo[] = catalog.entries.map((entry) => ({
        id: entry.id,
        display_name: entry.displayName,
        provider: providerOf(entry.model),
        vision_supported: entry.visionSupported,
        ...(entry.reasoningLevel !== undefined ? { reasoning_level: entry.reasoningLevel } : {}),
        ...(entry.description !== undefined ? { description: entry.description } : {}),
      }));
      const listed = new Set(models.map((m) => m.id));
      // The default too, when it is a provider/model id OZ_MODELS does not list: default_model_id always names a listed model.
      for (const id of [...deps.models.models, ...(catalog.defaultModel !== null ? [catalog.defaultModel] : [])]) {
        if (listed.has(id)) continue;
        listed.add(id);
        models.push({ id, display_name: id.slice(id.indexOf('/') + 1), provider: providerOf(id), vision_supported: false, description: `${id} (configured on this server)` });
      }
      return { default_model_id: catalog.defaultModel ?? models[0]?.id ?? '', models };
    });
  };
}
