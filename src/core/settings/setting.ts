import { z } from 'zod';

/**
 * One setting of the settings table (src/core/settings/table.ts): where its
 * value comes from, what it may be, its default, and who reads it. The
 * loaders, the commander options and the README's table are all made from
 * these, so a setting is declared once.
 */

/** An environment: the process's, or a test's. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The processes that read settings: the API server, a worker (standalone or embedded in `oz server`), the CLI's other commands. */
export const PROCESSES = ['server', 'worker', 'cli'] as const;
export type ProcessName = (typeof PROCESSES)[number];

/** The commands that take flags for settings (`oz` = the global options every command has). */
export const COMMANDS = ['oz', 'server', 'server rotate-master-key', 'worker'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Sections of the README's table, and of the configs the settings fold into. */
export const SETTING_GROUPS = {
  server: 'The API server',
  models: 'Models',
  eventStreams: 'Run event streams (SSE)',
  worker: 'Workers',
  agent: 'The built-in agent',
  results: 'Results: branches, commits, GitHub',
  hostGit: 'Host-side git',
  network: 'Network egress',
  sandboxLimits: 'Per-run limits',
  cli: 'The CLI',
} as const;
export type SettingGroup = keyof typeof SETTING_GROUPS;

export interface SettingFlag {
  readonly name: `--${string}`;
  /** The value's placeholder: `<arg>` in `--help`, upper case in the README. */
  readonly arg: string;
  /** The commands that have this flag: only their errors name it. */
  readonly on: ReadonlySet<CommandName>;
  /** Given several times, the values are one list (`--label a --label b` is `a,b`): for settings whose schema is a comma-separated list. */
  readonly repeatable?: true;
}

export interface Setting<V = unknown, P extends ProcessName = ProcessName> {
  /** The variable; `alsoEnv` are read after it (older or alternative names). */
  readonly env: string;
  readonly alsoEnv?: readonly string[];
  /** The command-line flag, where a command has one (it wins over the variable). */
  readonly flag?: SettingFlag;
  /** Parses the text of the flag or variable: bounds, format, conversion. */
  readonly schema: z.ZodType<V>;
  /** The value when neither is set: a value, or a function of the environment (paths under `$HOME`, XDG directories). */
  readonly default: V | ((env: Env) => V);
  /** How the default reads in `--help` and the README when it is not the plain value (a function, unset, derived). */
  readonly shownDefault?: string;
  /** One line: what the setting does (markdown: backticks are dropped in `--help`). */
  readonly doc: string;
  readonly group: SettingGroup;
  readonly readBy: ReadonlySet<P>;
  /** An empty value counts as unset (the default applies) instead of being parsed. */
  readonly emptyIsUnset?: true;
  /** The value is a credential: never echoed in an error. */
  readonly secret?: true;
}

/** Declare a setting; its value type is the schema's output or the default's (`null` = unset). */
export function setting<T, const D extends T | null, P extends ProcessName>(
  spec: Omit<Setting<T | D, P>, 'schema' | 'default'> & { readonly schema: z.ZodType<T>; readonly default: D | ((env: Env) => D) },
): Setting<T | D, P> {
  return spec;
}

/** The processes that read a setting. */
export function readBy<P extends ProcessName>(...processes: P[]): ReadonlySet<P> {
  return new Set(processes);
}

export function flag(name: `--${string}`, arg: string, ...on: CommandName[]): SettingFlag {
  return { name, arg, on: new Set(on) };
}

/** A flag that may be given several times; its values are joined with commas (the setting's schema splits them). */
export function repeatableFlag(name: `--${string}`, arg: string, ...on: CommandName[]): SettingFlag {
  return { name, arg, on: new Set(on), repeatable: true };
}

/** How an error names a setting: `--flag / VARIABLE` where the command has the flag, else the variable alone. */
export function settingName(entry: Setting, command: CommandName, variable: string = entry.env): string {
  return entry.flag?.on.has(command) ? `${entry.flag.name} / ${variable}` : variable;
}

/** The default as `--help` and the README show it (markdown). */
export function shownDefault(entry: Setting): string {
  if (entry.shownDefault !== undefined) return entry.shownDefault;
  const value = entry.default;
  if (value === null) return 'unset';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map((v) => `\`${String(v)}\``).join(', ');
  if (typeof value === 'function') throw new Error(`${entry.env}: a computed default needs shownDefault`);
  return `\`${String(value)}\``;
}

/** Markdown to the plain text of `--help`. */
export function plainText(markdown: string): string {
  return markdown.replace(/`/g, '');
}

/**
 * Options that are not settings: no variable, only a flag of one command
 * (`--no-worker`, `oz worker`'s server and token). Declared beside the
 * settings so `--help` and the README are generated from one place.
 */
export interface CommandLineOption {
  readonly flag: `--${string}`;
  readonly arg?: string;
  readonly on: CommandName;
  readonly doc: string;
  readonly shownDefault: string;
  readonly group: SettingGroup;
  readonly readBy: ProcessName;
  readonly required?: true;
}

/** The values a setting allows when its schema is a list of choices (`--backend bwrap|direct`), else null. */
export function choicesOf(entry: Setting): readonly string[] | null {
  return entry.schema instanceof z.ZodEnum ? entry.schema.options.map(String) : null;
}
