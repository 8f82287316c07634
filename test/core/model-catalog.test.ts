import { describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG, ModelCatalog } from '../../src/core/model-catalog.js';
import { isOzError } from '../../src/core/errors.js';

describe('model catalog', () => {
  const catalog = new ModelCatalog(BUILTIN_CATALOG, 'claude-4-6-sonnet');

  it("resolves Oz's ids, auto and provider/model ids", () => {
    expect(catalog.resolve('claude-4-6-opus-high')).toEqual({ requested: 'claude-4-6-opus-high', model: 'anthropic/claude-opus-4-6' });
    expect(catalog.resolve('gpt-5-4-high')).toEqual({ requested: 'gpt-5-4-high', model: 'openai/gpt-5.4' });
    expect(catalog.resolve('auto')).toEqual({ requested: 'auto', model: 'anthropic/claude-sonnet-4-6' });
    expect(catalog.resolve('openai-compatible/qwen3:8b')).toEqual({ requested: 'openai-compatible/qwen3:8b', model: 'openai-compatible/qwen3:8b' });
  });

  it('answers auto with no model where no default is configured (the harness picks)', () => {
    expect(new ModelCatalog(BUILTIN_CATALOG, null).resolve('auto')).toEqual({ requested: 'auto', model: null });
  });

  it('refuses an unknown id, naming the field and what is allowed', () => {
    let error: unknown;
    try {
      catalog.resolve('gpt-9-ultra', 'config.model_id');
    } catch (e) {
      error = e;
    }
    expect(isOzError(error) && error.code).toBe('invalid_request');
    expect((error as Error).message).toMatch(
      /^config\.model_id: unknown model "gpt-9-ultra"; allowed: auto, a catalog id \(claude-4-6-opus, .* more \(GET \/api\/v1\/agent\/models\)\), or provider\/model with provider anthropic, openai, openai-compatible$/,
    );
    expect(catalog.accepts('gpt-9-ultra')).toBe(false);
    expect(catalog.accepts('auto')).toBe(true);
  });

  it('lets a later entry replace a built-in one, and refuses a default it cannot resolve', () => {
    const custom = new ModelCatalog([...BUILTIN_CATALOG, { id: 'gpt-5-4-high', model: 'openai-compatible/local', displayName: 'Local', visionSupported: false }], 'gpt-5-4-high');
    expect(custom.resolve('auto').model).toBe('openai-compatible/local');
    expect(custom.entries.filter((e) => e.id === 'gpt-5-4-high')).toHaveLength(1);
    expect(() => new ModelCatalog(BUILTIN_CATALOG, 'nonsense')).toThrow(/neither a catalog id nor provider\/model/);
  });
});
