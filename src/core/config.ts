import { OzError } from './errors.js';
import {
  cliEnvironment,
  serverConfig,
  workerConfig,
  workerLaunch,
  type CliEnvironment,
  type OzConfig,
  type ServerConfig,
  type WorkerConfig,
  type WorkerLaunch,
} from './settings/configs.js';
import { parseSetting, parseSettings, settingsReadBy, type SettingOverrides, type SettingValue } from './settings/load.js';
import { cliConfigPath as cliConfigPathOf } from './settings/paths.js';
import { masterKeyBytes, masterKeyError } from './settings/schemas.js';
import type { CommandName, Env } from './settings/setting.js';
import type { SettingName } from './settings/table.js';

/**
 * Configuration: the only module that reads the process environment. The
 * settings are declared once, in src/core/settings/table.ts; each process
 * reads only its own (a worker box does not fail on a server's variable, nor
 * the reverse), validated and frozen, and the composition roots pass the
 * result down. An error names the flag and the variable where the command
 * has that flag, else the variable alone.
 */

export type {
  AgentSettings,
  CliEnvironment,
  EventStreamSettings,
  HostGitSettings,
  ModelProviderSettings,
  OzConfig,
  ResultsSettings,
  ServerConfig,
  WorkerConfig,
  WorkerLaunch,
} from './settings/configs.js';
export { DEFAULT_EVENT_STREAMS, defaultSandboxLimits } from './settings/configs.js';
export { defaultDataDir } from './settings/paths.js';
export { MODEL_ID_PATTERN } from './settings/schemas.js';
export type { CommandName, Env } from './settings/setting.js';
export { DEFAULT_PORT, SANDBOX_BACKENDS, SETTINGS, type SandboxBackendName, type SettingName } from './settings/table.js';
export type { SettingOverrides } from './settings/load.js';

/** Flag values by setting name (`{ port: '8080' }`): they win over the variables. */
export type ConfigOverrides = SettingOverrides;

/** The API server's settings (`command` says whose flags an error may name). */
export function loadServerConfig(overrides: ConfigOverrides = {}, env: Env = process.env, command: CommandName = 'server'): ServerConfig {
  return serverConfig(parseSettings(settingsReadBy('server'), { env, overrides, command }), env);
}

/** A worker's settings: `oz worker`'s, or those of the worker `oz server` embeds. */
export function loadWorkerConfig(overrides: ConfigOverrides = {}, env: Env = process.env, command: CommandName = 'worker'): WorkerConfig {
  return workerConfig(parseSettings(settingsReadBy('worker'), { env, overrides, command }));
}

/** What `oz server` reads: its own settings and its embedded worker's, each once. */
function serverProcess(overrides: ConfigOverrides, env: Env, command: CommandName): { config: OzConfig; launch: WorkerLaunch } {
  const names = [...new Set([...settingsReadBy('server'), ...settingsReadBy('worker')])];
  const settings = parseSettings(names, { env, overrides, command });
  return { config: Object.freeze({ ...serverConfig(settings, env), ...workerConfig(settings) }), launch: workerLaunch(settings) };
}

/** `oz server`'s config: the server's settings and its embedded worker's. */
export function loadConfig(overrides: ConfigOverrides = {}, env: Env = process.env, command: CommandName = 'server'): OzConfig {
  return serverProcess(overrides, env, command).config;
}

/** `oz server`: its config, and how to start its embedded worker. */
export function loadServerCommand(overrides: ConfigOverrides = {}, env: Env = process.env): { config: OzConfig; launch: WorkerLaunch } {
  return serverProcess(overrides, env, 'server');
}

/** `oz worker`: its config, sandbox backend and token (validated with the rest of its settings). */
export function loadWorkerCommand(overrides: ConfigOverrides = {}, env: Env = process.env): { config: WorkerConfig; launch: WorkerLaunch } {
  const settings = parseSettings(settingsReadBy('worker'), { env, overrides, command: 'worker' });
  return { config: workerConfig(settings), launch: workerLaunch(settings) };
}

/**
 * `oz server rotate-master-key`: what `oz server` reads (the keyring takes
 * the whole config), naming only this command's flags.
 */
export function loadRotationConfig(overrides: ConfigOverrides = {}, env: Env = process.env): OzConfig {
  return loadConfig(overrides, env, 'server rotate-master-key');
}

/** What the CLI takes from its environment; the commands validate the values they use (a flag may replace a bad variable). */
export function loadCliEnvironment(env: Env = process.env): CliEnvironment {
  return cliEnvironment(parseSettings(settingsReadBy('cli'), { env, command: 'oz' }), env, Boolean(process.stdout.isTTY));
}

/** A setting's default in an empty environment: the fallback of a dependency a caller may omit (e.g. `ServerDeps`). */
export function settingDefault<N extends SettingName>(name: N): SettingValue<N> {
  return parseSetting(name, { env: {}, command: 'oz' });
}

/** The CLI's config file: `$XDG_CONFIG_HOME/oz/config.json`, else `~/.config/oz/config.json`. */
export function cliConfigPath(env: Env = process.env): string {
  return cliConfigPathOf(env);
}

/** 32 bytes, as 64 hex digits or base64; `source` (a variable, a key file) names it in the error. */
export function parseMasterKey(text: string, source: string): Buffer {
  const key = masterKeyBytes(text);
  if (!key) throw new OzError('invalid_request', masterKeyError(source));
  return key;
}
