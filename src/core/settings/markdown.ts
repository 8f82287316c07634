import { SETTING_GROUPS, choicesOf, shownDefault, type CommandLineOption, type CommandName, type Setting, type SettingGroup } from './setting.js';
import { COMMAND_LINE_OPTIONS, SETTINGS, type SettingName } from './table.js';

/**
 * The README's configuration table, made from the settings table: one table
 * per group, one row per setting (and per command-line option), with the
 * flag and the commands that have it, the variable, the default, the
 * processes that read it, and what it does. `npm run docs:settings` writes it
 * between the markers; a test checks the README holds exactly this.
 */

export const SETTINGS_BEGIN = '<!-- settings:begin -->';
export const SETTINGS_END = '<!-- settings:end -->';

const cell = (text: string): string => text.replace(/\|/g, '\\|');

const code = (text: string): string => `\`${text}\``;

/** A table row; an empty cell stays one space wide. */
const row = (cells: string[]): string => `|${cells.map((text) => (text ? ` ${cell(text)} ` : ' ')).join('|')}|`;

/** `oz server`, `oz worker`… after a flag; nothing for the global options, which every command has. */
function commands(on: Iterable<CommandName>): string {
  const names = [...on].filter((command) => command !== 'oz');
  return names.length === 0 ? '' : ` (${names.map((command) => code(`oz ${command}`)).join(', ')})`;
}

function settingRow(entry: Setting): string {
  const flag = entry.flag ? `${code(`${entry.flag.name} ${choicesOf(entry)?.join('|') ?? entry.flag.arg.toUpperCase()}`)}${commands(entry.flag.on)}` : '';
  const env = [code(entry.env), ...(entry.alsoEnv ?? []).map((variable) => `(or ${code(variable)})`)].join(' ');
  return row([flag, env, shownDefault(entry), [...entry.readBy].join(', '), entry.doc]);
}

function optionRow(option: CommandLineOption): string {
  const flag = `${code(option.arg ? `${option.flag} ${option.arg.toUpperCase()}` : option.flag)}${commands([option.on])}`;
  return row([flag, '', option.shownDefault, option.readBy, option.doc]);
}

export function renderSettingsTable(): string {
  const sections = (Object.keys(SETTING_GROUPS) as SettingGroup[]).map((group) => {
    const settings = (Object.keys(SETTINGS) as SettingName[]).map((name): Setting => SETTINGS[name]).filter((entry) => entry.group === group);
    const options = COMMAND_LINE_OPTIONS.filter((option) => option.group === group);
    return [
      `**${SETTING_GROUPS[group]}**`,
      '',
      '| flag | env | default | read by | meaning |',
      '|---|---|---|---|---|',
      ...options.map(optionRow),
      ...settings.map(settingRow),
    ].join('\n');
  });
  return [
    SETTINGS_BEGIN,
    '<!-- Generated from src/core/settings/table.ts by `npm run docs:settings`: edit the table, not this. -->',
    '',
    sections.join('\n\n'),
    '',
    SETTINGS_END,
  ].join('\n');
}

/** The generated region of a README, markers included; throws when the markers are missing. */
export function settingsRegion(readme: string): { start: number; end: number } {
  const start = readme.indexOf(SETTINGS_BEGIN);
  const endMarker = readme.indexOf(SETTINGS_END, start);
  if (start < 0 || endMarker < 0) throw new Error(`the README has no ${SETTINGS_BEGIN} … ${SETTINGS_END} region`);
  return { start, end: endMarker + SETTINGS_END.length };
}

/** The README with its settings region replaced by the generated table. */
export function withSettingsTable(readme: string): string {
  const { start, end } = settingsRegion(readme);
  return `${readme.slice(0, start)}${renderSettingsTable()}${readme.slice(end)}`;
}
