import { describe, expect, it } from 'vitest';
import { settingDefault } from '../../src/core/config.js';
import { COMMANDS, shownDefault, type Setting } from '../../src/core/settings/setting.js';
import { CEILING_FACTOR, COMMAND_LINE_OPTIONS, SANDBOX_LIMITS, SETTINGS } from '../../src/core/settings/table.js';
import { SETTING_NAMES } from './settings-bad-values.js';

const entries = SETTING_NAMES.map((name): [string, Setting] => [name, SETTINGS[name]]);

describe('the settings table', () => {
  it('reads each variable for one setting only', () => {
    const variables = entries.flatMap(([, entry]) => [entry.env, ...(entry.alsoEnv ?? [])]);
    expect(new Set(variables).size).toBe(variables.length);
  });

  it('gives each command a flag once', () => {
    for (const command of COMMANDS) {
      const flags = [
        ...entries.filter(([, entry]) => entry.flag?.on.has(command)).map(([, entry]) => entry.flag?.name),
        ...COMMAND_LINE_OPTIONS.filter((option) => option.on === command).map((option) => option.flag),
      ];
      expect(new Set(flags).size, command).toBe(flags.length);
    }
  });

  it('has defaults its own bounds accept', () => {
    for (const [name, entry] of entries) {
      const value = entry.default;
      if (typeof value !== 'number' && typeof value !== 'string') continue;
      expect(entry.schema.safeParse(String(value)), name).toMatchObject({ success: true, data: value });
    }
    for (const limit of Object.values(SANDBOX_LIMITS)) expect(Math.min(limit.max, limit.default * CEILING_FACTOR)).toBeGreaterThanOrEqual(limit.default);
  });

  it('shows every default in --help and the README', () => {
    for (const [name, entry] of entries) expect(shownDefault(entry), name).not.toBe('');
  });

  it('gives the defaults a caller may omit (ServerDeps fallbacks)', () => {
    expect(settingDefault('sweepIntervalMs')).toBe(2000);
    expect(settingDefault('eventPollMs')).toBe(1000);
    expect(settingDefault('port')).toBe(7420);
  });
});
