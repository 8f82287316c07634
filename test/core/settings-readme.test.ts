import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderSettingsTable, settingsRegion } from '../../src/core/settings/markdown.js';
import { SETTINGS } from '../../src/core/settings/table.js';
import { SETTING_NAMES } from './settings-bad-values.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe("the README's configuration table", () => {
  it('is the one generated from the settings table (npm run docs:settings)', () => {
    const { start, end } = settingsRegion(README);
    expect(README.slice(start, end)).toBe(renderSettingsTable());
  });

  it('lists every variable', () => {
    for (const name of SETTING_NAMES) expect(renderSettingsTable()).toContain(`\`${SETTINGS[name].env}\``);
  });
});
