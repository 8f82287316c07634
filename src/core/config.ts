import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { OzError } from './errors.js';
import type { RunLimits } from './environment.js';

/**
 * Configuration: the only module that reads the process environment. It is
 * read once, validated, and frozen; composition roots pass it down. Errors
 * name both the flag and the environment variable.
 */
export interface OzConfig {
  /** Where the embedded store and its lock live (`--data-dir` / `OZ_DATA_DIR`). */
  readonly dataDir: string;
  /** `postgres://…` to use PostgreSQL instead of the embedded SQLite (`OZ_DATABASE_URL`). */
  readonly databaseUrl: string | null;
  /** Lease length for claimed runs (`OZ_LEASE_TTL_MS`). */
  readonly leaseTtlMs: number;
  /** Address the API binds (`--host` / `OZ_HOST`), loopback by default. */
  readonly host: string;
  /** API port (`--port` / `OZ_PORT`); 0 picks a free one. */
  readonly port: number;
  /** Model used when a run names none (`OZ_DEFAULT_MODEL`). */
  readonly defaultModel: string | null;
  /** The built-in agent's providers, retries and default budgets (worker side). */
  readonly agent: AgentSettings;
  /** How a run's changes are published (worker side). */
  readonly results: ResultsSettings;
  /** The Claude Code and Codex binaries given to sandboxes (`OZ_CLAUDE_BIN`, `OZ_CODEX_BIN`): a path, `off`, or null = the installed npm packages', if any. */
  readonly claudeBin: string | null;
  readonly codexBin: string | null;
  /** Models offered by `/agent/models` (`OZ_MODELS`, comma-separated `provider/model` ids). */
  readonly models: readonly string[];
  /** Concurrency limit given to teams created without one (`OZ_TEAM_MAX_CONCURRENT_RUNS`). */
  readonly teamMaxConcurrentRuns: number;
  /** The CLI's config file (server URL, API key): `$XDG_CONFIG_HOME/oz/config.json`. */
  readonly cliConfigPath: string;
  /** Server log level (`OZ_LOG_LEVEL`): fatal, error, warn, info, debug, trace, silent. */
  readonly logLevel: string;
  /** Runs a worker executes at once (`--concurrency` / `OZ_WORKER_CONCURRENCY`). */
  readonly workerConcurrency: number;
  /** SIGTERM → SIGKILL grace when a run is stopped (`OZ_KILL_GRACE_MS`). */
  readonly killGraceMs: number;
  /** How long a draining worker lets runs finish (`--drain-grace-ms` / `OZ_DRAIN_GRACE_MS`). */
  readonly drainGraceMs: number;
  /** Output stored per run before truncation (`OZ_MAX_OUTPUT_BYTES`). */
  readonly maxOutputBytes: number;
  /** How often the server sweeps expired leases and admits queued runs (`OZ_SWEEP_INTERVAL_MS`). */
  readonly sweepIntervalMs: number;
  /** Long-poll and event-stream readers re-read the store at least this often (`OZ_EVENT_POLL_MS`). */
  readonly eventPollMs: number;
  /** Limits of the run event streams (SSE): heartbeats, slow and idle clients, streams per key and team. */
  readonly eventStreams: EventStreamSettings;
  /** The master key that seals secrets (`OZ_MASTER_KEY`: 32 bytes as 64 hex digits or base64); null = the key file in the data dir. */
  readonly masterKey: Buffer | null;
  /** The key `oz server rotate-master-key` moves to (`OZ_NEW_MASTER_KEY`); null = a random one. */
  readonly newMasterKey: Buffer | null;
  /** Where the worker finds host tools (bwrap, setpriv, git): the process's `PATH`. */
  readonly hostPath: string;
  /** Worker-side repository mirrors (`--cache-dir` / `OZ_CACHE_DIR`). */
  readonly cacheDir: string;
  /** Where sandbox run directories are made (`OZ_SANDBOX_ROOT`); null = `oz-sandboxes` under the OS temp dir. */
  readonly sandboxRoot: string | null;
  /** Directories `file://` repositories may come from (`OZ_FILE_REPO_ROOTS`, `:`-separated); none = refused. */
  readonly fileRepoRoots: readonly string[];
  /** Host-side git (mirror fetches, publishing): its limits and the destinations allowed besides public addresses. */
  readonly hostGit: HostGitSettings;
  /** Per-run limits where the environment sets none (`OZ_SANDBOX_PIDS`, `_MEMORY_MB`, `_DISK_MB`, `_OUTPUT_MB`, `_CPUS`, `_RUNTIME_MINUTES`). */
  readonly sandboxDefaults: Readonly<RunLimits>;
  /** The most an environment or a run may set (`OZ_SANDBOX_MAX_*`; default four times the default); the server refuses more. */
  readonly sandboxMaxima: Readonly<RunLimits>;
}

export interface ConfigOverrides {
  dataDir?: string;
  databaseUrl?: string;
  host?: string;
  port?: string;
  concurrency?: string;
  drainGraceMs?: string;
  cacheDir?: string;
}

/** Default API port of `oz server` and default target of the CLI. */
export const DEFAULT_PORT = 7420;

export const MODEL_ID_PATTERN = /^(anthropic|openai|openai-compatible)\/[A-Za-z0-9._:-]{1,120}$/;

type Env = Record<string, string | undefined>;

/**
 * Where the built-in agent's model providers are (docs/design.md "Harnesses and
 * models"). A run's typed secrets (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`)
 * take precedence over these keys.
 */
export interface ModelProviderSettings {
  anthropicApiKey?: string;
  anthropicBaseUrl?: string;
  openaiApiKey?: string;
  openaiBaseUrl?: string;
  /** Chat completions at this URL: Ollama, vLLM, LiteLLM… (a key is optional there). */
  compatibleBaseUrl?: string;
  compatibleApiKey?: string;
}

export interface AgentSettings {
  providers: ModelProviderSettings;
  /** The AI SDK's retries of a failed model call (`OZ_MODEL_MAX_RETRIES`). */
  maxRetries: number;
  /** Budgets where a run sets none (`OZ_AGENT_MAX_STEPS`, `OZ_AGENT_MAX_TOKENS`, `OZ_AGENT_MAX_MINUTES`). */
  maxSteps: number;
  maxTokens: number;
  maxTimeMs: number;
}

/**
 * Limits of `GET /agent/runs/{id}/events` (docs/api.md "Event streams"). Counts
 * are per server process.
 */
export interface EventStreamSettings {
  /** A `: keep-alive` comment after this long without a write; the stream's API key is re-checked as often (`OZ_EVENT_STREAM_HEARTBEAT_MS`). */
  readonly heartbeatMs: number;
  /** A client that reads nothing for this long while the server has data for it is disconnected (`OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS`). */
  readonly unwritableTimeoutMs: number;
  /** A stream that sent no event for this long, on a run no worker is executing, is ended (`OZ_EVENT_STREAM_IDLE_TIMEOUT_MS`). */
  readonly idleTimeoutMs: number;
  /** Open streams per API key (`OZ_EVENT_STREAMS_PER_KEY`) and per team (`OZ_EVENT_STREAMS_PER_TEAM`). */
  readonly maxPerKey: number;
  readonly maxPerTeam: number;
}

export const DEFAULT_EVENT_STREAMS: EventStreamSettings = Object.freeze({
  heartbeatMs: 15_000,
  unwritableTimeoutMs: 30_000,
  idleTimeoutMs: 15 * 60_000,
  maxPerKey: 20,
  maxPerTeam: 100,
});

function eventStreamSettings(env: Env): EventStreamSettings {
  const int = (min: number, max: number) => z.coerce.number().int().min(min, `must be ${min}..${max}`).max(max, `must be ${min}..${max}`);
  const d = DEFAULT_EVENT_STREAMS;
  return Object.freeze({
    heartbeatMs: check(int(50, 600_000), env.OZ_EVENT_STREAM_HEARTBEAT_MS ?? d.heartbeatMs, null, 'OZ_EVENT_STREAM_HEARTBEAT_MS'),
    unwritableTimeoutMs: check(int(100, 3_600_000), env.OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS ?? d.unwritableTimeoutMs, null, 'OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS'),
    idleTimeoutMs: check(int(100, 7 * 24 * 3_600_000), env.OZ_EVENT_STREAM_IDLE_TIMEOUT_MS ?? d.idleTimeoutMs, null, 'OZ_EVENT_STREAM_IDLE_TIMEOUT_MS'),
    maxPerKey: check(int(1, 100_000), env.OZ_EVENT_STREAMS_PER_KEY ?? d.maxPerKey, null, 'OZ_EVENT_STREAMS_PER_KEY'),
    maxPerTeam: check(int(1, 1_000_000), env.OZ_EVENT_STREAMS_PER_TEAM ?? d.maxPerTeam, null, 'OZ_EVENT_STREAMS_PER_TEAM'),
  });
}

/**
 * Host-side git (docs/sandboxes.md "Host-side git"): every fetch into a
 * mirror and every push runs under these limits, and only to public
 * addresses unless allowed here.
 */
export interface HostGitSettings {
  /** `OZ_HOST_GIT_MEMORY_MB` (default 2048): address space of each host git process, and their memory together (cgroup). */
  memoryBytes: number;
  /** `OZ_HOST_GIT_MAX_FILE_MB` (default 16384): the largest file host git may write (a fetched pack). */
  maxFileBytes: number;
  /**
   * `OZ_GIT_ALLOWED_HOSTS`: comma-separated `host`, `host:port`, address,
   * `[v6]:port` or CIDR entries that host-side git may reach although they
   * are loopback, private, link-local, … (default none). The host of
   * `OZ_GITHUB_GIT_URL` is allowed implicitly.
   */
  allowedHosts: readonly string[];
}

const ALLOWED_HOST_ENTRY = /^(\[[0-9A-Fa-f:.]+\](:\d{1,5})?|[0-9A-Fa-f:.]+\/\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*|[A-Za-z0-9_.-]+(:\d{1,5})?)$/;

function hostGitSettings(env: Env): HostGitSettings {
  const entries = (env.OZ_GIT_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .map((entry) => check(z.string().regex(ALLOWED_HOST_ENTRY, 'entries must be host, host:port, an address, [v6]:port or a CIDR range'), entry, null, 'OZ_GIT_ALLOWED_HOSTS'));
  return Object.freeze({
    memoryBytes: check(z.coerce.number().int().min(64).max(1_048_576), env.OZ_HOST_GIT_MEMORY_MB ?? 2048, null, 'OZ_HOST_GIT_MEMORY_MB') * 1024 * 1024,
    maxFileBytes: check(z.coerce.number().int().min(16).max(10_485_760), env.OZ_HOST_GIT_MAX_FILE_MB ?? 16_384, null, 'OZ_HOST_GIT_MAX_FILE_MB') * 1024 * 1024,
    allowedHosts: Object.freeze(entries),
  });
}

export interface ResultsSettings {
  /** `OZ_BRANCH_PREFIX` (default `oz/`): a run's branch is the prefix and its id. */
  branchPrefix: string;
  /** `OZ_GIT_AUTHOR_NAME`, `OZ_GIT_AUTHOR_EMAIL`: author and committer of a run's commit. */
  authorName: string;
  authorEmail: string;
  /** `OZ_GITHUB_URL`: repository URLs under it are GitHub's (pull requests through its API). */
  githubUrl: string;
  /** `OZ_GITHUB_GIT_URL`: where those repositories are fetched from and pushed to (default: `OZ_GITHUB_URL`). */
  githubGitUrl: string;
  /** `OZ_GITHUB_API_URL`: GitHub's REST API (GitHub Enterprise: `https://HOST/api/v3`). */
  githubApiUrl: string;
}

function resultsSettings(env: Env): ResultsSettings {
  const url = (value: string, variable: string): string =>
    check(z.url({ protocol: /^(https?|file)$/, error: 'must be an http(s) or file URL' }), value, variable, variable).replace(/\/+$/, '');
  const githubUrl = url(env.OZ_GITHUB_URL || 'https://github.com', 'OZ_GITHUB_URL');
  return {
    branchPrefix: check(
      z
        .string()
        .max(60)
        .regex(/^([A-Za-z0-9][A-Za-z0-9_-]*[/-]?)*$/, 'must be letters, digits, "-", "_" and "/" (e.g. oz/ or agent-)'),
      env.OZ_BRANCH_PREFIX ?? 'oz/',
      'OZ_BRANCH_PREFIX',
      'OZ_BRANCH_PREFIX',
    ),
    authorName: check(
      z
        .string()
        .min(1)
        .max(200)
        .regex(/^[^<>\n]+$/, 'must not contain <, > or a newline'),
      env.OZ_GIT_AUTHOR_NAME ?? 'Oz',
      null,
      'OZ_GIT_AUTHOR_NAME',
    ),
    authorEmail: check(
      z
        .string()
        .min(3)
        .max(200)
        .regex(/^[^<>\s]+@[^<>\s]+$/, 'must be an email address'),
      env.OZ_GIT_AUTHOR_EMAIL ?? 'oz@localhost',
      null,
      'OZ_GIT_AUTHOR_EMAIL',
    ),
    githubUrl,
    githubGitUrl: env.OZ_GITHUB_GIT_URL ? url(env.OZ_GITHUB_GIT_URL, 'OZ_GITHUB_GIT_URL') : githubUrl,
    githubApiUrl: url(env.OZ_GITHUB_API_URL || 'https://api.github.com', 'OZ_GITHUB_API_URL'),
  };
}

function agentSettings(env: Env): AgentSettings {
  const url = (value: string | undefined, variable: string): string | undefined =>
    value ? check(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }), value, variable, variable) : undefined;
  const key = (value: string | undefined): string | undefined => (value ? value : undefined);
  const providers: ModelProviderSettings = {};
  const set = (name: keyof ModelProviderSettings, value: string | undefined): void => {
    if (value !== undefined) providers[name] = value;
  };
  set('anthropicApiKey', key(env.ANTHROPIC_API_KEY));
  set('anthropicBaseUrl', url(env.ANTHROPIC_BASE_URL, 'ANTHROPIC_BASE_URL'));
  set('openaiApiKey', key(env.OPENAI_API_KEY));
  set('openaiBaseUrl', url(env.OPENAI_BASE_URL, 'OPENAI_BASE_URL'));
  set('compatibleBaseUrl', url(env.OZ_OPENAI_COMPATIBLE_BASE_URL, 'OZ_OPENAI_COMPATIBLE_BASE_URL'));
  set('compatibleApiKey', key(env.OZ_OPENAI_COMPATIBLE_API_KEY));
  const int = (min: number, max: number) => z.coerce.number().int().min(min, `must be ${min}..${max}`).max(max, `must be ${min}..${max}`);
  return {
    providers,
    maxRetries: check(int(0, 10), env.OZ_MODEL_MAX_RETRIES ?? 2, null, 'OZ_MODEL_MAX_RETRIES'),
    maxSteps: check(int(1, 10_000), env.OZ_AGENT_MAX_STEPS ?? 100, null, 'OZ_AGENT_MAX_STEPS'),
    maxTokens: check(int(1000, 1_000_000_000), env.OZ_AGENT_MAX_TOKENS ?? 5_000_000, null, 'OZ_AGENT_MAX_TOKENS'),
    maxTimeMs: check(int(1, 7 * 24 * 60), env.OZ_AGENT_MAX_MINUTES ?? 60, null, 'OZ_AGENT_MAX_MINUTES') * 60_000,
  };
}

const postgresUrl = z.string().refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

const positiveMs = z.coerce
  .number()
  .int()
  .min(1000)
  .max(24 * 3600 * 1000);

/** The XDG data directory for Oz: `$XDG_DATA_HOME/oz`, else `~/.local/share/oz`. */
export function defaultDataDir(env: Env): string {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.local', 'share');
  return join(base, 'oz');
}

/** How an error names a setting: its flag and variable where it has a flag, else the variable alone. */
function settingName(flag: string | null, envVar: string): string {
  return flag ? `${flag} / ${envVar}` : envVar;
}

function check<T>(schema: z.ZodType<T>, value: unknown, flag: string | null, envVar: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => i.message).join('; ');
    throw new OzError('invalid_request', `${settingName(flag, envVar)}: ${why} (got ${JSON.stringify(value)})`, {
      reason: envVar,
    });
  }
  return parsed.data;
}

/** Read and validate the configuration. `env` defaults to the process environment. */
export function loadConfig(overrides: ConfigOverrides = {}, env: Env = process.env): OzConfig {
  const dataDirRaw = overrides.dataDir ?? env.OZ_DATA_DIR;
  const dataDir = dataDirRaw ? resolve(check(z.string().min(1, 'must not be empty'), dataDirRaw, '--data-dir', 'OZ_DATA_DIR')) : defaultDataDir(env);
  const urlRaw = overrides.databaseUrl ?? env.OZ_DATABASE_URL;
  const databaseUrl = urlRaw ? check(postgresUrl, urlRaw, null, 'OZ_DATABASE_URL') : null;
  const leaseTtlMs = env.OZ_LEASE_TTL_MS === undefined ? 30_000 : check(positiveMs, env.OZ_LEASE_TTL_MS, null, 'OZ_LEASE_TTL_MS');
  const host = check(z.string().min(1, 'must not be empty'), overrides.host ?? env.OZ_HOST ?? '127.0.0.1', '--host', 'OZ_HOST');
  const port = check(z.coerce.number().int().min(0, 'must be 0..65535').max(65535, 'must be 0..65535'), overrides.port ?? env.OZ_PORT ?? DEFAULT_PORT, '--port', 'OZ_PORT');
  const modelId = z.string().regex(MODEL_ID_PATTERN, 'must be provider/model with provider anthropic, openai or openai-compatible');
  const defaultModel = env.OZ_DEFAULT_MODEL ? check(modelId, env.OZ_DEFAULT_MODEL, null, 'OZ_DEFAULT_MODEL') : null;
  const listed = (env.OZ_MODELS ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m.length > 0)
    .map((m) => check(modelId, m, null, 'OZ_MODELS'));
  const models = Object.freeze([...new Set([...(defaultModel ? [defaultModel] : []), ...listed])]);
  const teamMaxConcurrentRuns = check(
    z.coerce.number().int().min(1, 'must be at least 1').max(10_000, 'must be at most 10000'),
    env.OZ_TEAM_MAX_CONCURRENT_RUNS ?? 4,
    null,
    'OZ_TEAM_MAX_CONCURRENT_RUNS',
  );
  return Object.freeze({
    dataDir,
    databaseUrl,
    leaseTtlMs,
    host,
    port,
    defaultModel,
    models,
    agent: agentSettings(env),
    results: resultsSettings(env),
    claudeBin: env.OZ_CLAUDE_BIN === 'off' ? 'off' : env.OZ_CLAUDE_BIN ? absoluteDir(env.OZ_CLAUDE_BIN, '', null, 'OZ_CLAUDE_BIN') : null,
    codexBin: env.OZ_CODEX_BIN === 'off' ? 'off' : env.OZ_CODEX_BIN ? absoluteDir(env.OZ_CODEX_BIN, '', null, 'OZ_CODEX_BIN') : null,
    teamMaxConcurrentRuns,
    cliConfigPath: cliConfigPath(env),
    workerConcurrency: check(
      z.coerce.number().int().min(1, 'must be 1..64').max(64, 'must be 1..64'),
      overrides.concurrency ?? env.OZ_WORKER_CONCURRENCY ?? 2,
      '--concurrency',
      'OZ_WORKER_CONCURRENCY',
    ),
    killGraceMs: check(z.coerce.number().int().min(0).max(600_000), env.OZ_KILL_GRACE_MS ?? 2000, null, 'OZ_KILL_GRACE_MS'),
    drainGraceMs: check(
      z.coerce
        .number()
        .int()
        .min(0)
        .max(24 * 3600 * 1000),
      overrides.drainGraceMs ?? env.OZ_DRAIN_GRACE_MS ?? 30_000,
      '--drain-grace-ms',
      'OZ_DRAIN_GRACE_MS',
    ),
    maxOutputBytes: check(
      z.coerce
        .number()
        .int()
        .min(1024)
        .max(1024 ** 3),
      env.OZ_MAX_OUTPUT_BYTES ?? 8 * 1024 * 1024,
      null,
      'OZ_MAX_OUTPUT_BYTES',
    ),
    masterKey: env.OZ_MASTER_KEY ? parseMasterKey(env.OZ_MASTER_KEY, 'OZ_MASTER_KEY') : null,
    newMasterKey: env.OZ_NEW_MASTER_KEY ? parseMasterKey(env.OZ_NEW_MASTER_KEY, 'OZ_NEW_MASTER_KEY') : null,
    hostPath: env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    cacheDir: absoluteDir(overrides.cacheDir ?? env.OZ_CACHE_DIR, defaultCacheDir(env), '--cache-dir', 'OZ_CACHE_DIR'),
    sandboxRoot: env.OZ_SANDBOX_ROOT ? absoluteDir(env.OZ_SANDBOX_ROOT, '', null, 'OZ_SANDBOX_ROOT') : null,
    fileRepoRoots: Object.freeze(
      (env.OZ_FILE_REPO_ROOTS ?? '')
        .split(':')
        .filter((dir) => dir.length > 0)
        .map((dir) => absoluteDir(dir, '', null, 'OZ_FILE_REPO_ROOTS')),
    ),
    hostGit: hostGitSettings(env),
    ...sandboxLimitSettings(env),
    eventPollMs: check(z.coerce.number().int().min(50).max(600_000), env.OZ_EVENT_POLL_MS ?? 1000, null, 'OZ_EVENT_POLL_MS'),
    eventStreams: eventStreamSettings(env),
    sweepIntervalMs: check(z.coerce.number().int().min(100).max(600_000), env.OZ_SWEEP_INTERVAL_MS ?? 2000, null, 'OZ_SWEEP_INTERVAL_MS'),
    logLevel: check(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), env.OZ_LOG_LEVEL ?? 'info', null, 'OZ_LOG_LEVEL'),
  });
}

const MIB = 1024 * 1024;

/**
 * Per-run limits: the default where an environment (or run) sets none, and
 * the ceiling above which the server refuses a value. Each ceiling defaults to
 * four times its default (within the absolute bound); a ceiling below its
 * default is an error. Both are read by the server and the worker alike, and
 * both have defaults, so a worker box needs none of them.
 */
function sandboxLimitSettings(env: Env): { sandboxDefaults: Readonly<RunLimits>; sandboxMaxima: Readonly<RunLimits> } {
  const one = (name: string, min: number, max: number, fallback: number, integer = true): [number, number] => {
    const n = integer
      ? z.coerce.number().int().min(min, `must be ${min}..${max}`).max(max, `must be ${min}..${max}`)
      : z.coerce.number().min(min, `must be ${min}..${max}`).max(max, `must be ${min}..${max}`);
    const variable = `OZ_SANDBOX_${name}`;
    const maxVariable = `OZ_SANDBOX_MAX_${name}`;
    // Variables only: no command has a flag for them.
    const value = check(n, env[variable] ?? fallback, null, variable);
    const ceiling = check(n, env[maxVariable] ?? Math.min(max, value * 4), null, maxVariable);
    if (ceiling < value) {
      throw new OzError('invalid_request', `${maxVariable} (${ceiling}) is below ${variable} (${value}): the ceiling must be at least the default`, { reason: maxVariable });
    }
    return [value, ceiling];
  };
  const [pids, maxPids] = one('PIDS', 16, 100_000, 1024);
  const [memory, maxMemory] = one('MEMORY_MB', 64, 1_048_576, 4096);
  const [disk, maxDisk] = one('DISK_MB', 16, 10_485_760, 10_240);
  const [output, maxOutput] = one('OUTPUT_MB', 1, 10_240, 256);
  const [cpus, maxCpus] = one('CPUS', 0.01, 1024, 2, false);
  const [runtime, maxRuntime] = one('RUNTIME_MINUTES', 1, 7 * 24 * 60, 240);
  return {
    sandboxDefaults: Object.freeze({ pids, memoryBytes: memory * MIB, diskBytes: disk * MIB, outputBytes: output * MIB, cpus, maxRuntimeMs: runtime * 60_000 }),
    sandboxMaxima: Object.freeze({
      pids: maxPids,
      memoryBytes: maxMemory * MIB,
      diskBytes: maxDisk * MIB,
      outputBytes: maxOutput * MIB,
      cpus: maxCpus,
      maxRuntimeMs: maxRuntime * 60_000,
    }),
  };
}

/** The per-run defaults and ceilings of an empty configuration (what a server without `OZ_SANDBOX_*` uses). */
export function defaultSandboxLimits(): { defaults: RunLimits; maxima: RunLimits } {
  const { sandboxDefaults, sandboxMaxima } = sandboxLimitSettings({});
  return { defaults: sandboxDefaults, maxima: sandboxMaxima };
}

/** 32 bytes, as 64 hex digits or base64 (what `openssl rand -hex 32` / `-base64 32` print). */
export function parseMasterKey(text: string, variable: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : /^[A-Za-z0-9+/]{43}=$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : null;
  if (!key || key.length !== 32) throw new OzError('invalid_request', `${variable}: must be 32 bytes as 64 hex digits or base64 (e.g. the output of \`openssl rand -hex 32\`)`);
  return key;
}

function absoluteDir(value: string | undefined, fallback: string, flag: string | null, variable: string): string {
  const dir = value ?? fallback;
  if (!isAbsolute(dir)) throw new OzError('invalid_request', `${settingName(flag, variable)}: "${dir}" must be an absolute path`);
  return resolve(dir);
}

/**
 * Mirrors must sit on a path the sandbox uids can search (bwrap resolves its
 * bind sources as them), so a root worker keeps them in /var/cache, not in
 * root's 0700 home.
 */
function defaultCacheDir(env: Env): string {
  if (process.getuid?.() === 0) return '/var/cache/oz';
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache'), 'oz');
}

/** `$XDG_CONFIG_HOME/oz/config.json`, else `~/.config/oz/config.json`. */
export function cliConfigPath(env: Env = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.config');
  return join(base, 'oz', 'config.json');
}

/**
 * `oz worker`'s token from `OZ_WORKER_TOKEN` (null when unset or blank): the
 * environment of a process is readable only by its user, its command line by
 * every local user.
 */
export function workerTokenFromEnv(env: Env = process.env): string | null {
  return env.OZ_WORKER_TOKEN?.trim() || null;
}

/** What the CLI takes from its environment (flags win over these). */
export interface CliEnvironment {
  readonly apiKey: string | null;
  readonly serverUrl: string | null;
  readonly outputFormat: string | null;
  readonly configPath: string;
  readonly isTty: boolean;
}

export function loadCliEnvironment(env: Env = process.env): CliEnvironment {
  return Object.freeze({
    apiKey: env.WARP_API_KEY || env.OZ_API_KEY || null,
    serverUrl: env.OZ_SERVER_URL || null,
    outputFormat: env.WARP_OUTPUT_FORMAT || null,
    configPath: cliConfigPath(env),
    isTty: Boolean(process.stdout.isTTY),
  });
}
