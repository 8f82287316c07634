import { z } from 'zod';

/** The spec's ModelInfo provider names. */
export const MODEL_PROVIDERS = ['OPENAI', 'ANTHROPIC', 'GOOGLE', 'UNKNOWN'] as const;

/** The spec's ListModelsResponse, over the models this deployment configured. */
export const listModelsResponseSchema = z
  .object({
    default_model_id: z.string(),
    models: z.array(z.object({ id: z.string(), display_name: z.string(), provider: z.enum(MODEL_PROVIDERS), vision_supported: z.boolean() })),
  })
  .meta({ id: 'ListModelsResponse' });

export type ListModelsResponse = z.infer<typeof listModelsResponseSchema>;
export type ModelProvider = (typeof MODEL_PROVIDERS)[number];
