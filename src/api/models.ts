import { z } from 'zod';

/** The spec's ModelInfo provider names. */
export const MODEL_PROVIDERS = ['OPENAI', 'ANTHROPIC', 'GOOGLE', 'UNKNOWN'] as const;

/** The spec's ModelInfo: a catalog entry, or a provider/model id the deployment configured (`OZ_MODELS`). */
export const modelInfoSchema = z
  .object({
    id: z.string(),
    display_name: z.string(),
    provider: z.enum(MODEL_PROVIDERS),
    vision_supported: z.boolean(),
    reasoning_level: z.string().exactOptional(),
    description: z.string().exactOptional(),
  })
  .meta({ id: 'ModelInfo' });

/** The spec's ListModelsResponse: the model catalog, then the configured provider/model ids. */
export const listModelsResponseSchema = z
  .object({
    default_model_id: z.string(),
    models: z.array(modelInfoSchema),
  })
  .meta({ id: 'ListModelsResponse' });

export type ModelInfo = z.infer<typeof modelInfoSchema>;
export type ListModelsResponse = z.infer<typeof listModelsResponseSchema>;
export type ModelProvider = (typeof MODEL_PROVIDERS)[number];
