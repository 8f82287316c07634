import { OzError } from '../errors.js';
import { settingName, type CommandName, type Env, type ProcessName, type Setting } from './setting.js';
import { SETTINGS, type SettingName, type Settings } from './table.js';

/** Values given on a command line (or by a caller), by setting name; they win over the variables. */
export type SettingOverrides = { readonly [N in SettingName]?: string | undefined };

/** Where a load reads from, and which command it is (only that command's flags are named in errors). */
export interface SettingsInput {
  readonly env: Env;
  readonly overrides?: SettingOverrides;
  readonly command: CommandName;
}

type ValueOf<S> = S extends Setting<infer V, ProcessName> ? V : never;
type ReadersOf<S> = S extends Setting<unknown, infer P> ? P : never;

export type SettingValue<N extends SettingName> = ValueOf<Settings[N]>;

/** The settings a process reads. */
export type SettingNameReadBy<P extends ProcessName> = { [N in SettingName]: P extends ReadersOf<Settings[N]> ? N : never }[SettingName];

/** Parsed values, by setting name. */
export type ParsedSettings<N extends SettingName> = { readonly [K in N]: SettingValue<K> };
export type SettingsOf<P extends ProcessName> = ParsedSettings<SettingNameReadBy<P>>;

/** The table's setting names read by a process, in table order. */
export function settingsReadBy<P extends ProcessName>(process: P): SettingNameReadBy<P>[] {
  const names = (Object.keys(SETTINGS) as SettingName[]).filter((name) => (SETTINGS[name] as Setting).readBy.has(process));
  // The filter is the type's condition, evaluated at run time.
  return names as SettingNameReadBy<P>[];
}

/** The text a setting is read from, and the variable it came from: the override, else the variable, else its other names. */
function rawValue(name: SettingName, entry: Setting, input: SettingsInput): { text: string; variable: string } | undefined {
  const sources: [string | undefined, string][] = [
    [input.overrides?.[name], entry.env],
    [input.env[entry.env], entry.env],
    ...(entry.alsoEnv ?? []).map((variable): [string | undefined, string] => [input.env[variable], variable]),
  ];
  for (const [text, variable] of sources) {
    if (text === undefined || (text === '' && entry.emptyIsUnset)) continue;
    return { text, variable };
  }
  return undefined;
}

/** A default computed from the environment (no setting's value is a function). */
const isComputed = (value: unknown): value is (env: Env) => unknown => typeof value === 'function';

/** One setting's value: parsed from its flag or variable, else its default. Errors name what the user can change. */
export function parseSetting<N extends SettingName>(name: N, input: SettingsInput): SettingValue<N> {
  const entry: Setting = SETTINGS[name];
  const raw = rawValue(name, entry, input);
  if (raw === undefined) return (isComputed(entry.default) ? entry.default(input.env) : entry.default) as SettingValue<N>;
  const parsed = entry.schema.safeParse(raw.text);
  if (!parsed.success) {
    // A list's entries fail alike: say it once.
    const why = [...new Set(parsed.error.issues.map((issue) => issue.message))].join('; ');
    const shown = JSON.stringify(raw.text);
    // A credential is never echoed; a message that already quotes the value need not repeat it.
    const got = entry.secret || why.includes(shown) ? '' : ` (got ${shown})`;
    throw new OzError('invalid_request', `${settingName(entry, input.command, raw.variable)}: ${why}${got}`, { reason: raw.variable });
  }
  // The entry was widened to Setting to read it generically; its schema is the one of `name`.
  return parsed.data as SettingValue<N>;
}

/** Several settings at once; the first invalid one throws. */
export function parseSettings<N extends SettingName>(names: readonly N[], input: SettingsInput): ParsedSettings<N> {
  const values: Partial<Record<N, unknown>> = {};
  for (const name of names) values[name] = parseSetting(name, input);
  return values as ParsedSettings<N>;
}
