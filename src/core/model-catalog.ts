import { OzError } from './errors.js';

/**
 * The models a run may name (docs/agent.md "Models"). Oz names models by
 * catalog ids (`claude-4-6-opus-high`, `gpt-5-4-high`) and `auto`; the
 * platform itself calls models as `provider/model`. The catalog maps the
 * first to the second, so a script written for Oz runs unchanged, while a
 * `provider/model` id still names any model of a configured provider
 * directly (a local model behind an OpenAI-compatible server has no catalog
 * id anyone could know in advance).
 */

/** The providers the platform calls. */
export const MODEL_PROVIDERS = ['anthropic', 'openai', 'openai-compatible'] as const;
export type ModelProviderName = (typeof MODEL_PROVIDERS)[number];

/** `provider/model`, as the worker calls it. */
export const PROVIDER_MODEL_PATTERN = /^(anthropic|openai|openai-compatible)\/[A-Za-z0-9._:-]{1,120}$/;
/** A catalog id: lower-case words joined by `-` or `.` (Oz's style). */
export const CATALOG_ID_PATTERN = /^[a-z0-9][a-z0-9.-]{0,79}$/;

/** The id that picks the deployment's default model. */
export const AUTO_MODEL = 'auto';

export interface CatalogEntry {
  /** What a run names (`model_id`). */
  id: string;
  /** What the worker calls: `provider/model`. */
  model: string;
  displayName: string;
  visionSupported: boolean;
  /** Oz's reasoning level descriptor of the id (`low`, `medium`, `high`), if any. */
  reasoningLevel?: string | undefined;
  description?: string | undefined;
}

/**
 * Built-in entries: Oz's ids for the current Anthropic and OpenAI models.
 * An operator replaces or extends them with `OZ_MODEL_CATALOG`; a reasoning
 * level is a descriptor here (the model is the same).
 */
export const BUILTIN_CATALOG: readonly CatalogEntry[] = Object.freeze([
  ...reasoningLevels('claude-4-6-opus', 'anthropic/claude-opus-4-6', 'Claude Opus 4.6', true),
  ...reasoningLevels('claude-4-6-sonnet', 'anthropic/claude-sonnet-4-6', 'Claude Sonnet 4.6', true),
  ...reasoningLevels('claude-4-5-sonnet', 'anthropic/claude-sonnet-4-5', 'Claude Sonnet 4.5', true),
  { id: 'claude-4-5-haiku', model: 'anthropic/claude-haiku-4-5', displayName: 'Claude Haiku 4.5', visionSupported: true },
  ...reasoningLevels('gpt-5-4', 'openai/gpt-5.4', 'GPT-5.4', true),
  ...reasoningLevels('gpt-5-2', 'openai/gpt-5.2', 'GPT-5.2', true),
  ...reasoningLevels('gpt-5', 'openai/gpt-5', 'GPT-5', true),
  { id: 'gpt-5-mini', model: 'openai/gpt-5-mini', displayName: 'GPT-5 mini', visionSupported: true },
]);

function reasoningLevels(id: string, model: string, displayName: string, visionSupported: boolean): CatalogEntry[] {
  return [
    { id, model, displayName, visionSupported },
    ...['low', 'medium', 'high'].map((level) => ({ id: `${id}-${level}`, model, displayName: `${displayName} (${level} reasoning)`, visionSupported, reasoningLevel: level })),
  ];
}

/** What a run's `model_id` resolved to. */
export interface ResolvedModel {
  /** As the run named it (echoed back in its config). */
  requested: string;
  /** `provider/model`, for the worker; null for `auto` where no default is configured (the harness's own default). */
  model: string | null;
}

export class ModelCatalog {
  private readonly byId: ReadonlyMap<string, CatalogEntry>;

  /**
   * @param entries the catalog (ids unique; later entries replace earlier ones of the same id)
   * @param defaultModel what `auto` and a run that names nothing resolve to: a catalog id or `provider/model`; null = none configured
   */
  constructor(
    entries: readonly CatalogEntry[],
    readonly defaultModel: string | null,
  ) {
    const byId = new Map<string, CatalogEntry>();
    for (const entry of entries) byId.set(entry.id, entry);
    this.byId = byId;
    if (defaultModel !== null && !this.byId.has(defaultModel) && !PROVIDER_MODEL_PATTERN.test(defaultModel)) {
      throw new OzError('invalid_request', `the default model ${defaultModel} is neither a catalog id nor provider/model`, { reason: 'default_model' });
    }
  }

  get entries(): readonly CatalogEntry[] {
    return [...this.byId.values()];
  }

  /** Whether `id` is a model a run may name (for validation without resolving). */
  accepts(id: string): boolean {
    return id === AUTO_MODEL || this.byId.has(id) || PROVIDER_MODEL_PATTERN.test(id);
  }

  /**
   * A run's `model_id` as the worker calls it; `auto` is the default model.
   * Unknown ids are a 400 naming `field` and what is allowed.
   */
  resolve(id: string, field = 'model_id'): ResolvedModel {
    if (id === AUTO_MODEL) return { requested: id, model: this.defaultModel === null ? null : this.resolve(this.defaultModel, field).model };
    const entry = this.byId.get(id);
    if (entry) return { requested: id, model: entry.model };
    if (PROVIDER_MODEL_PATTERN.test(id)) return { requested: id, model: id };
    throw new OzError('invalid_request', `${field}: unknown model ${JSON.stringify(id.slice(0, 200))}; allowed: auto, ${this.describeAllowed()}`, { reason: field });
  }

  private describeAllowed(): string {
    const ids = [...this.byId.keys()];
    const shown = ids.slice(0, 12).join(', ');
    const more = ids.length > 12 ? ` and ${ids.length - 12} more (GET /api/v1/agent/models)` : '';
    return `${ids.length > 0 ? `a catalog id (${shown}${more}), or ` : ''}provider/model with provider ${MODEL_PROVIDERS.join(', ')}`;
  }
}
