import { SETTINGS, type SettingName } from '../../src/core/settings/table.js';

/**
 * An invalid value for every setting of the table, by variable; null for a
 * setting that accepts any text (a key, a path resolved as given). The
 * tests check this covers the whole table, so a new setting needs one.
 */
export const BAD_VALUES: Readonly<Record<string, string | null>> = {
  OZ_DATA_DIR: null,
  OZ_DATABASE_URL: 'mysql://db',
  OZ_PORT: '70000',
  OZ_HOST: '',
  OZ_LEASE_TTL_MS: '5',
  OZ_TEAM_MAX_CONCURRENT_RUNS: '0',
  OZ_IDLE_TIMEOUT_MINUTES: '61',
  OZ_WEB_SESSION_HOURS: '0',
  OZ_TRUST_PROXY: 'yes',
  OZ_NETWORK_DEFAULT: 'sometimes',
  OZ_NETWORK_DEFAULT_PRESETS: 'npm,NPM!',
  OZ_NETWORK_PRESETS_FILE: 'relative/presets.json',
  OZ_WORKSPACE_SNAPSHOT_MAX_MB: '0',
  OZ_WORKSPACE_SNAPSHOT_RETENTION_DAYS: '0',
  OZ_SWEEP_INTERVAL_MS: '1',
  OZ_EVENT_POLL_MS: '1',
  OZ_LOG_LEVEL: 'loud',
  OZ_MASTER_KEY: 'short',
  OZ_NEW_MASTER_KEY: 'short',
  OZ_DEFAULT_MODEL: 'Not a model',
  OZ_MODEL_CATALOG: 'relative/catalog.yaml',
  OZ_MODELS: 'openai/gpt-5,nope',
  OZ_EVENT_STREAM_HEARTBEAT_MS: '1',
  OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS: '1',
  OZ_EVENT_STREAM_IDLE_TIMEOUT_MS: '-1',
  OZ_EVENT_STREAMS_PER_KEY: '0',
  OZ_EVENT_STREAMS_PER_TEAM: 'many',
  OZ_SANDBOX_BACKEND: 'lxc',
  OZ_WORKER_TOKEN: null,
  OZ_WORKER_CONCURRENCY: '99',
  OZ_SPARE_SANDBOXES: '17',
  OZ_WORKER_NAME: 'Box 1',
  OZ_WORKER_LABELS: 'gpu,warp',
  OZ_DRAIN_GRACE_MS: 'x',
  OZ_KILL_GRACE_MS: '-1',
  OZ_MAX_OUTPUT_BYTES: '1',
  OZ_CACHE_DIR: 'relative',
  OZ_SANDBOX_ROOT: 'relative',
  OZ_FILE_REPO_ROOTS: '/ok:relative',
  OZ_CLAUDE_BIN: 'relative',
  OZ_CODEX_BIN: 'relative',
  PATH: null,
  ANTHROPIC_API_KEY: null,
  ANTHROPIC_BASE_URL: 'file:///x',
  OPENAI_API_KEY: null,
  OPENAI_BASE_URL: 'ftp://x',
  OZ_OPENAI_COMPATIBLE_BASE_URL: 'not a url',
  OZ_OPENAI_COMPATIBLE_API_KEY: null,
  OZ_MODEL_MAX_RETRIES: '-1',
  OZ_AGENT_MAX_STEPS: '0',
  OZ_AGENT_MAX_TOKENS: '1',
  OZ_AGENT_MAX_MINUTES: '0',
  OZ_BRANCH_PREFIX: 'a b',
  OZ_GIT_AUTHOR_NAME: '<x>',
  OZ_GIT_AUTHOR_EMAIL: 'nope',
  OZ_GITHUB_URL: 'ftp://x',
  OZ_GITHUB_GIT_URL: 'nope',
  OZ_GITHUB_API_URL: 'ftp://x',
  OZ_HOST_GIT_MEMORY_MB: '1',
  OZ_HOST_GIT_MAX_FILE_MB: '1',
  OZ_GIT_ALLOWED_HOSTS: 'a b',
  OZ_INSECURE_REGISTRIES: 'https://registry.example',
  OZ_IMAGE_STORE_MB: '10',
  OZ_REGISTRY_ALLOWED_HOSTS: 'a b',
  OZ_SNAPSHOT_STORE_MB: '-1',
  OZ_SANDBOX_PIDS: '3',
  OZ_SANDBOX_MEMORY_MB: '1',
  OZ_SANDBOX_DISK_MB: '1',
  OZ_SANDBOX_OUTPUT_MB: '0',
  OZ_SANDBOX_CPUS: '0',
  OZ_SANDBOX_RUNTIME_MINUTES: '1.5',
  OZ_SANDBOX_MAX_PIDS: '3',
  // Within the bound but below the default: refused after parsing.
  OZ_SANDBOX_MAX_MEMORY_MB: '1024',
  OZ_SANDBOX_MAX_DISK_MB: '99999999',
  OZ_SANDBOX_MAX_OUTPUT_MB: '0',
  OZ_SANDBOX_MAX_CPUS: '1',
  OZ_SANDBOX_MAX_RUNTIME_MINUTES: '99999',
  // The CLI's: its commands refuse these (src/cli/context.ts), its loader passes them on.
  WARP_API_KEY: null,
  OZ_SERVER_URL: 'nope',
  WARP_OUTPUT_FORMAT: 'loud',
  // Any path: `oz agent run-cloud` names the variable when it cannot read the file.
  WARP_AGENT_CONFIG_FILE: null,
};

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** The table's settings that have an invalid value, with it. */
export function badSettings(): { name: SettingName; variable: string; value: string }[] {
  return SETTING_NAMES.flatMap((name) => {
    const value = BAD_VALUES[SETTINGS[name].env];
    return typeof value === 'string' ? [{ name, variable: SETTINGS[name].env, value }] : [];
  });
}

/** An environment with nothing of the host's: a home, and one variable set. */
export const envWith = (variable: string, value: string): Record<string, string> => ({ HOME: '/home/u', [variable]: value });
