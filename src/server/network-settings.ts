import { readFileSync } from 'node:fs';
import { OzError } from '../core/errors.js';
import { BUILTIN_PRESETS, hasPreset, parsePresets } from '../core/network-policy.js';
import type { NetworkSettings } from './environment-service.js';

/**
 * The deployment's network settings from its config: the presets file
 * (`OZ_NETWORK_PRESETS_FILE`) over the built-in presets, and the default
 * policy with its presets, each checked. A bad file or an unknown default
 * preset stops the server at start, naming the setting.
 */
export function buildNetworkSettings(config: { defaultPolicy: NetworkSettings['defaultPolicy']; defaultPresets: readonly string[]; presetsFile: string | null }): NetworkSettings {
  let presets = BUILTIN_PRESETS;
  if (config.presetsFile) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(config.presetsFile, 'utf8'));
    } catch (error) {
      throw new OzError('invalid_request', `OZ_NETWORK_PRESETS_FILE: cannot read ${config.presetsFile}: ${(error as Error).message}`, { reason: 'OZ_NETWORK_PRESETS_FILE' });
    }
    try {
      presets = parsePresets(json, `OZ_NETWORK_PRESETS_FILE ${config.presetsFile}`);
    } catch (error) {
      throw new OzError('invalid_request', (error as Error).message, { reason: 'OZ_NETWORK_PRESETS_FILE' });
    }
  }
  const unknown = config.defaultPresets.filter((name) => !hasPreset(presets, name));
  if (unknown.length > 0) {
    throw new OzError('invalid_request', `OZ_NETWORK_DEFAULT_PRESETS: no preset named ${unknown.join(', ')} (there are ${Object.keys(presets).sort().join(', ')})`, {
      reason: 'OZ_NETWORK_DEFAULT_PRESETS',
    });
  }
  return { presets, defaultPolicy: config.defaultPolicy, defaultPresets: config.defaultPresets };
}
