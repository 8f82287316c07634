import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { OzError } from './errors.js';
import { BUILTIN_CATALOG, CATALOG_ID_PATTERN, ModelCatalog, PROVIDER_MODEL_PATTERN, type CatalogEntry } from './model-catalog.js';

/**
 * The operator's model catalog (`OZ_MODEL_CATALOG`), JSON or YAML:
 *
 *     replace_builtin: false        # true: only these entries
 *     models:
 *       - id: claude-4-6-opus-high
 *         model: anthropic/claude-opus-4-6
 *         display_name: Claude Opus 4.6
 *         vision_supported: true
 *         reasoning_level: high
 */
const entrySchema = z.strictObject({
  id: z.string().regex(CATALOG_ID_PATTERN, 'must be lower-case letters, digits, "." and "-" (e.g. claude-4-6-opus-high)'),
  model: z.string().regex(PROVIDER_MODEL_PATTERN, 'must be provider/model with provider anthropic, openai or openai-compatible'),
  display_name: z.string().min(1).max(200).optional(),
  vision_supported: z.boolean().optional(),
  reasoning_level: z.string().min(1).max(40).optional(),
  description: z.string().min(1).max(500).optional(),
});
const fileSchema = z.strictObject({ replace_builtin: z.boolean().optional(), models: z.array(entrySchema).max(10_000) });

export function readModelCatalogFile(path: string, variable = 'OZ_MODEL_CATALOG'): { entries: CatalogEntry[]; replaceBuiltin: boolean } {
  let value: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    value = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new OzError('invalid_request', `${variable}: cannot read ${path}: ${(error as Error).message.split('\n')[0]}`, { reason: variable });
  }
  const parsed = fileSchema.safeParse(value);
  if (!parsed.success) {
    const why = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'the file'}: ${issue.message}`).join('; ');
    throw new OzError('invalid_request', `${variable}: ${path}: ${why}`, { reason: variable });
  }
  return {
    replaceBuiltin: parsed.data.replace_builtin ?? false,
    entries: parsed.data.models.map((m) => ({
      id: m.id,
      model: m.model,
      displayName: m.display_name ?? m.id,
      visionSupported: m.vision_supported ?? false,
      reasoningLevel: m.reasoning_level,
      description: m.description,
    })),
  };
}

/** The deployment's catalog: the built-in entries and the operator's file, with the configured default. */
export function buildModelCatalog(config: { modelCatalog: string | null; defaultModel: string | null }): ModelCatalog {
  const file = config.modelCatalog ? readModelCatalogFile(config.modelCatalog) : null;
  const entries = [...(file?.replaceBuiltin ? [] : BUILTIN_CATALOG), ...(file?.entries ?? [])];
  try {
    return new ModelCatalog(entries, config.defaultModel);
  } catch (error) {
    throw new OzError('invalid_request', `OZ_DEFAULT_MODEL: ${config.defaultModel} is not in the model catalog and not provider/model`, {
      reason: 'OZ_DEFAULT_MODEL',
      cause: error,
    });
  }
}
