import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModel } from 'ai';
import type { ModelProviderSettings } from '../../core/config.js';

/** The requested model has no provider configured; the message says what to set. */
export class ModelNotConfiguredError extends Error {}

const PREFIXES = ['anthropic', 'openai', 'openai-compatible'] as const;

/**
 * The AI SDK model for `provider/model`. Anthropic: Messages API; OpenAI: the
 * Responses API; openai-compatible: chat completions (with usage in streams).
 */
export function resolveModel(modelId: string, settings: ModelProviderSettings, runSecrets: Record<string, string>): LanguageModel {
  const slash = modelId.indexOf('/');
  const provider = modelId.slice(0, slash);
  const name = modelId.slice(slash + 1);
  if (slash <= 0 || !name || !(PREFIXES as readonly string[]).includes(provider)) {
    throw new ModelNotConfiguredError(`The model id "${modelId}" is not provider/model with provider ${PREFIXES.join(', ')}.`);
  }
  if (provider === 'anthropic') {
    const apiKey = runSecrets.ANTHROPIC_API_KEY ?? settings.anthropicApiKey;
    if (!apiKey) throw new ModelNotConfiguredError(`No Anthropic key for ${modelId}: add an anthropic-api-key secret for the team, or set ANTHROPIC_API_KEY on the worker.`);
    return createAnthropic({ apiKey, ...(settings.anthropicBaseUrl ? { baseURL: settings.anthropicBaseUrl } : {}) })(name);
  }
  if (provider === 'openai') {
    const apiKey = runSecrets.OPENAI_API_KEY ?? settings.openaiApiKey;
    if (!apiKey) throw new ModelNotConfiguredError(`No OpenAI key for ${modelId}: add an openai-api-key secret for the team, or set OPENAI_API_KEY on the worker.`);
    return createOpenAI({ apiKey, ...(settings.openaiBaseUrl ? { baseURL: settings.openaiBaseUrl } : {}) }).responses(name);
  }
  if (!settings.compatibleBaseUrl) {
    throw new ModelNotConfiguredError(`No OpenAI-compatible server for ${modelId}: set OZ_OPENAI_COMPATIBLE_BASE_URL on the worker.`);
  }
  return createOpenAICompatible({
    name: 'openai-compatible',
    baseURL: settings.compatibleBaseUrl,
    includeUsage: true,
    ...(settings.compatibleApiKey ? { apiKey: settings.compatibleApiKey } : {}),
  })(name);
}
