import { describe, expect, it } from 'vitest';
import { ModelNotConfiguredError, resolveModel } from '../../src/agent/builtin/models.js';

describe('model resolution', () => {
  it('names what to set when a provider is not configured', () => {
    expect(() => resolveModel('anthropic/claude-x', {}, {})).toThrow(ModelNotConfiguredError);
    expect(() => resolveModel('anthropic/claude-x', {}, {})).toThrow(/anthropic-api-key secret .* ANTHROPIC_API_KEY/);
    expect(() => resolveModel('openai/gpt-x', {}, {})).toThrow(/OPENAI_API_KEY/);
    expect(() => resolveModel('openai-compatible/m', {}, {})).toThrow(/OZ_OPENAI_COMPATIBLE_BASE_URL/);
    expect(() => resolveModel('mistral/x', {}, {})).toThrow(/provider anthropic, openai, openai-compatible/);
  });

  it("takes the run's typed secret before the worker's key, and the right API per provider", () => {
    const anthropic = resolveModel('anthropic/claude-x', {}, { ANTHROPIC_API_KEY: 'from-secret' });
    expect(anthropic).toMatchObject({ provider: 'anthropic.messages', modelId: 'claude-x' });
    expect(resolveModel('openai/gpt-x', { openaiApiKey: 'k' }, {})).toMatchObject({ provider: 'openai.responses', modelId: 'gpt-x' });
    expect(resolveModel('openai-compatible/llama', { compatibleBaseUrl: 'http://127.0.0.1:1/v1' }, {})).toMatchObject({ modelId: 'llama' });
  });
});
