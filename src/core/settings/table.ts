import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { workerNameFromHost } from '../worker-pool.js';
import { MIB } from '../units.js';
import { SYSTEM_PATH } from '../system-path.js';
import { defaultCacheDir, defaultDataDir } from './paths.js';
import {
  absolutePath,
  allowedHost,
  registryHost,
  anyText,
  branchPrefix,
  forgeUrl,
  gitAuthorEmail,
  gitAuthorName,
  httpUrl,
  intIn,
  listOf,
  masterKey,
  modelId,
  modelReference,
  nonEmpty,
  numberIn,
  offOrAbsolutePath,
  oneOf,
  poolLabels,
  poolName,
  presetName,
  postgresUrl,
  token,
} from './schemas.js';
import { flag, readBy, repeatableFlag, setting, type CommandLineOption } from './setting.js';

/**
 * The settings table: every setting Oz reads, declared once. The per-process
 * configs (src/core/settings/configs.ts), the commander options of `oz`,
 * `oz server` and `oz worker` (src/cli/program.ts) and the README's
 * configuration table (`npm run docs:settings`) are made from it.
 */

/** Default API port of `oz server` and default target of the CLI. */
export const DEFAULT_PORT = 7420;

export const SANDBOX_BACKENDS = ['bwrap', 'docker', 'direct'] as const;
export type SandboxBackendName = (typeof SANDBOX_BACKENDS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const WEEK_MINUTES = 7 * 24 * 60;

/** An unset ceiling is this many times its limit's default (within the limit's bound). */
export const CEILING_FACTOR = 4;

/**
 * A per-run limit: its default (`OZ_SANDBOX_<suffix>`) and its ceiling
 * (`OZ_SANDBOX_MAX_<suffix>`) share the bounds; `scale` turns the configured
 * unit into the run limit's (MiB → bytes, minutes → ms).
 */
export interface SandboxLimit {
  readonly suffix: string;
  readonly min: number;
  readonly max: number;
  readonly default: number;
  readonly integer: boolean;
  readonly scale: number;
  readonly what: string;
  readonly unit: string | null;
}

export const SANDBOX_LIMITS = {
  pids: { suffix: 'PIDS', min: 16, max: 100_000, default: 1024, integer: true, scale: 1, what: 'processes and threads', unit: null },
  memoryBytes: { suffix: 'MEMORY_MB', min: 64, max: 1_048_576, default: 4096, integer: true, scale: MIB, what: 'memory', unit: 'MiB' },
  diskBytes: { suffix: 'DISK_MB', min: 16, max: 10_485_760, default: 10_240, integer: true, scale: MIB, what: 'disk', unit: 'MiB' },
  outputBytes: { suffix: 'OUTPUT_MB', min: 1, max: 10_240, default: 256, integer: true, scale: MIB, what: 'output', unit: 'MiB' },
  cpus: { suffix: 'CPUS', min: 0.01, max: 1024, default: 2, integer: false, scale: 1, what: 'CPU cores', unit: 'fractions allowed' },
  maxRuntimeMs: { suffix: 'RUNTIME_MINUTES', min: 1, max: WEEK_MINUTES, default: 240, integer: true, scale: 60_000, what: 'runtime', unit: 'minutes, setup included' },
} as const satisfies Record<string, SandboxLimit>;

export const limitVariable = (limit: SandboxLimit): string => `OZ_SANDBOX_${limit.suffix}`;
export const ceilingVariable = (limit: SandboxLimit): string => `OZ_SANDBOX_MAX_${limit.suffix}`;

const what = (limit: SandboxLimit): string => (limit.unit ? `${limit.what} (${limit.unit})` : limit.what);

const limitSchema = (limit: SandboxLimit) => (limit.integer ? intIn(limit.min, limit.max) : numberIn(limit.min, limit.max));

/** Read by both: the server resolves a run's limits, the worker applies them to runs that name none. */
function limitDefault(limit: SandboxLimit) {
  return setting({
    env: limitVariable(limit),
    schema: limitSchema(limit),
    default: limit.default,
    doc: `a run's ${what(limit)} where its environment (or the run) sets none`,
    group: 'sandboxLimits',
    readBy: readBy('server', 'worker'),
  });
}

/** Unset = derived after parsing: CEILING_FACTOR times the default, and never below it (src/core/settings/configs.ts). */
function limitCeiling(limit: SandboxLimit) {
  return setting({
    env: ceilingVariable(limit),
    schema: limitSchema(limit),
    default: null,
    shownDefault: `${CEILING_FACTOR} × \`${limitVariable(limit)}\` (at most ${limit.max})`,
    doc: `the most ${what(limit)} an environment, run or schedule may ask for; more is refused naming the field (a team's \`limit_ceilings\` may lower it)`,
    group: 'sandboxLimits',
    readBy: readBy('server', 'worker'),
  });
}

export const SETTINGS = {
  // The API server (the log level is the workers' too).
  dataDir: setting({
    env: 'OZ_DATA_DIR',
    flag: flag('--data-dir', 'dir', 'server', 'server rotate-master-key'),
    schema: nonEmpty.transform((dir) => resolve(dir)),
    default: defaultDataDir,
    shownDefault: '`$XDG_DATA_HOME/oz` (else `~/.local/share/oz`)',
    doc: 'embedded store and its lock (one Oz process per directory)',
    group: 'server',
    readBy: readBy('server'),
    emptyIsUnset: true,
  }),
  databaseUrl: setting({
    env: 'OZ_DATABASE_URL',
    schema: postgresUrl,
    default: null,
    doc: '`postgres://…` to use PostgreSQL instead of the embedded SQLite',
    group: 'server',
    readBy: readBy('server'),
    emptyIsUnset: true,
  }),
  port: setting({
    env: 'OZ_PORT',
    flag: flag('--port', 'port', 'server'),
    schema: intIn(0, 65535),
    default: DEFAULT_PORT,
    doc: 'API port (`0` = any free port)',
    group: 'server',
    readBy: readBy('server'),
  }),
  host: setting({
    env: 'OZ_HOST',
    flag: flag('--host', 'host', 'server'),
    schema: nonEmpty,
    default: '127.0.0.1',
    doc: 'address the API binds',
    group: 'server',
    readBy: readBy('server'),
  }),
  leaseTtlMs: setting({
    env: 'OZ_LEASE_TTL_MS',
    schema: intIn(1000, DAY_MS),
    default: 30_000,
    doc: "how long a worker's claim on a run lasts without a heartbeat",
    group: 'server',
    readBy: readBy('server'),
  }),
  idleTimeoutMinutes: setting({
    env: 'OZ_IDLE_TIMEOUT_MINUTES',
    schema: intIn(0, 60),
    default: 0,
    doc: "how long a run's sandbox stays alive after an execution ends, for a follow-up, when the run sets no `idle_timeout_minutes` (0: torn down at once)",
    group: 'server',
    readBy: readBy('server'),
  }),
  trustProxy: setting({
    env: 'OZ_TRUST_PROXY',
    schema: oneOf(['off', 'on']),
    default: 'off',
    doc: "`on` when the server is reached through a reverse proxy that terminates TLS: it then believes the proxy's `X-Forwarded-Proto` and `X-Forwarded-Host`, so links it builds are `https://` and the dashboard's cookie is `Secure`. Leave `off` when clients reach the server directly (anyone could send those headers)",
    group: 'server',
    readBy: readBy('server'),
  }),
  webSessionHours: setting({
    env: 'OZ_WEB_SESSION_HOURS',
    schema: intIn(1, 720),
    default: 12,
    doc: 'how long a dashboard sign-in lasts (hours); it ends sooner when the person signs out or the API key it signed in with expires',
    group: 'server',
    readBy: readBy('server'),
  }),
  workspaceSnapshotMaxMb: setting({
    env: 'OZ_WORKSPACE_SNAPSHOT_MAX_MB',
    schema: intIn(1, 4096),
    default: 64,
    doc: 'the largest workspace snapshot an execution may leave for its follow-ups (MiB); a larger one is not kept, and the run says so',
    group: 'server',
    readBy: readBy('server'),
  }),
  workspaceSnapshotRetentionDays: setting({
    env: 'OZ_WORKSPACE_SNAPSHOT_RETENTION_DAYS',
    schema: intIn(1, 3650),
    default: 14,
    doc: "how long an ended run keeps its last workspace snapshot for a follow-up (days); a follow-up after that starts from the run's branch",
    group: 'server',
    readBy: readBy('server'),
  }),
  teamMaxConcurrentRuns: setting({
    env: 'OZ_TEAM_MAX_CONCURRENT_RUNS',
    schema: intIn(1, 10_000),
    default: 4,
    doc: 'concurrency limit of teams created without one',
    group: 'server',
    readBy: readBy('server'),
  }),
  sweepIntervalMs: setting({
    env: 'OZ_SWEEP_INTERVAL_MS',
    schema: intIn(100, 600_000),
    default: 2000,
    doc: 'how often expired leases are resolved and queued runs admitted',
    group: 'server',
    readBy: readBy('server'),
  }),
  eventPollMs: setting({
    env: 'OZ_EVENT_POLL_MS',
    schema: intIn(50, 600_000),
    default: 1000,
    doc: 'long-polls and event streams re-read the store at least this often (a fallback for a lost wake-up)',
    group: 'server',
    readBy: readBy('server'),
  }),
  logLevel: setting({
    env: 'OZ_LOG_LEVEL',
    schema: oneOf(LOG_LEVELS),
    default: 'info',
    doc: `log level (${LOG_LEVELS.join(', ')}); logs go to stderr, one readable line per event on a terminal, JSON lines otherwise`,
    group: 'server',
    readBy: readBy('server', 'worker'),
  }),
  masterKey: setting({
    env: 'OZ_MASTER_KEY',
    schema: masterKey,
    default: null,
    shownDefault: '`<data dir>/master.key`',
    doc: 'the key that seals secrets (64 hex digits or base64); every server of a deployment needs the same',
    group: 'server',
    readBy: readBy('server'),
    emptyIsUnset: true,
    secret: true,
  }),
  newMasterKey: setting({
    env: 'OZ_NEW_MASTER_KEY',
    schema: masterKey,
    default: null,
    shownDefault: 'random',
    doc: 'the key `oz server rotate-master-key` moves to',
    group: 'server',
    readBy: readBy('server'),
    emptyIsUnset: true,
    secret: true,
  }),

  // Models.
  defaultModel: setting({
    env: 'OZ_DEFAULT_MODEL',
    schema: modelReference,
    default: null,
    doc: 'the model of `oz` runs that name none or `auto`: a catalog id or `provider/model`',
    group: 'models',
    readBy: readBy('server', 'worker'),
    emptyIsUnset: true,
  }),
  models: setting({
    env: 'OZ_MODELS',
    schema: listOf(',', modelId),
    default: [],
    doc: 'comma-separated `provider/model` ids `/agent/models` offers besides the catalog',
    group: 'models',
    readBy: readBy('server'),
  }),
  modelCatalog: setting({
    env: 'OZ_MODEL_CATALOG',
    schema: absolutePath,
    default: null,
    shownDefault: 'built-in entries',
    doc: 'a JSON or YAML file of model catalog entries (`id` → `provider/model`) added to, or with `replace_builtin: true` replacing, the built-in ones',
    group: 'models',
    readBy: readBy('server', 'worker'),
    emptyIsUnset: true,
  }),

  // Run event streams.
  eventStreamHeartbeatMs: setting({
    env: 'OZ_EVENT_STREAM_HEARTBEAT_MS',
    schema: intIn(50, 600_000),
    default: 15_000,
    doc: "a `: keep-alive` comment after this long without a write; the stream's API key is re-checked as often",
    group: 'eventStreams',
    readBy: readBy('server'),
  }),
  eventStreamUnwritableTimeoutMs: setting({
    env: 'OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS',
    schema: intIn(100, HOUR_MS),
    default: 30_000,
    doc: 'a client that reads nothing for this long while the server has data for it is disconnected',
    group: 'eventStreams',
    readBy: readBy('server'),
  }),
  eventStreamIdleTimeoutMs: setting({
    env: 'OZ_EVENT_STREAM_IDLE_TIMEOUT_MS',
    schema: intIn(100, 7 * DAY_MS),
    default: 15 * 60_000,
    doc: 'a stream that sent no event for this long, on a run no worker is executing, is ended (docs/api.md "Event streams")',
    group: 'eventStreams',
    readBy: readBy('server'),
  }),
  eventStreamsPerKey: setting({
    env: 'OZ_EVENT_STREAMS_PER_KEY',
    schema: intIn(1, 100_000),
    default: 20,
    doc: 'open run event streams per API key on one server; one more is a 429',
    group: 'eventStreams',
    readBy: readBy('server'),
  }),
  eventStreamsPerTeam: setting({
    env: 'OZ_EVENT_STREAMS_PER_TEAM',
    schema: intIn(1, 1_000_000),
    default: 100,
    doc: 'open run event streams per team on one server; one more is a 429',
    group: 'eventStreams',
    readBy: readBy('server'),
  }),

  // Workers.
  sandboxBackend: setting({
    env: 'OZ_SANDBOX_BACKEND',
    flag: flag('--backend', 'backend', 'server', 'worker'),
    schema: oneOf(SANDBOX_BACKENDS),
    default: 'bwrap',
    doc: "where runs execute: `bwrap` (bubblewrap jails), `docker` (containers through the Docker Engine API at `DOCKER_HOST`: Docker, or Podman's API service) or `direct` (no isolation, trusted code only)",
    group: 'worker',
    readBy: readBy('worker'),
  }),
  workerToken: setting({
    env: 'OZ_WORKER_TOKEN',
    schema: token,
    default: null,
    shownDefault: 'required for `oz worker`',
    doc: 'the worker token (`oz worker-token create`), else `--token-file FILE`; `--token T` is deprecated (visible in the process list)',
    group: 'worker',
    readBy: readBy('worker'),
    emptyIsUnset: true,
    secret: true,
  }),
  workerConcurrency: setting({
    env: 'OZ_WORKER_CONCURRENCY',
    flag: flag('--concurrency', 'n', 'worker'),
    schema: intIn(1, 64),
    default: 2,
    doc: 'runs a worker executes at once',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  spareSandboxes: setting({
    env: 'OZ_SPARE_SANDBOXES',
    schema: intIn(0, 16),
    default: 2,
    doc: "sandboxes a worker starts ahead of claims, on the bwrap backend, each shaped like a recent run's (its environment's limits, network, mirrors, image and snapshot), so the next run of that environment starts at once; 0: none (every run starts its own)",
    group: 'worker',
    readBy: readBy('worker'),
  }),
  workerName: setting({
    env: 'OZ_WORKER_NAME',
    flag: flag('--name', 'name', 'worker'),
    schema: poolName,
    default: () => workerNameFromHost(hostname()),
    shownDefault: 'the host name, lowercased (other characters become `-`)',
    doc: "the worker's name: runs whose `worker_host` is this name may run here (lowercase letters, digits, `.`, `_`, `-`; at most 63)",
    group: 'worker',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  workerLabels: setting({
    env: 'OZ_WORKER_LABELS',
    flag: repeatableFlag('--label', 'label', 'worker'),
    schema: poolLabels,
    default: [],
    shownDefault: 'none',
    doc: "the worker's labels (repeat `--label`, or comma-separated): runs whose `worker_host` is one of them may run here",
    group: 'worker',
    readBy: readBy('worker'),
  }),
  drainGraceMs: setting({
    env: 'OZ_DRAIN_GRACE_MS',
    flag: flag('--drain-grace-ms', 'ms', 'worker'),
    schema: intIn(0, DAY_MS),
    default: 30_000,
    doc: 'on SIGTERM, how long running runs may finish before they are cancelled',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  killGraceMs: setting({
    env: 'OZ_KILL_GRACE_MS',
    schema: intIn(0, 600_000),
    default: 2000,
    doc: 'SIGTERM → SIGKILL grace when a run is stopped',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  maxOutputBytes: setting({
    env: 'OZ_MAX_OUTPUT_BYTES',
    schema: intIn(1024, 1024 * MIB),
    default: 8 * MIB,
    doc: 'output stored per run before it is truncated',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  cacheDir: setting({
    env: 'OZ_CACHE_DIR',
    flag: flag('--cache-dir', 'dir', 'server', 'worker'),
    schema: absolutePath,
    default: defaultCacheDir,
    shownDefault: '`/var/cache/oz` as root, else `$XDG_CACHE_HOME/oz`',
    doc: "the worker's repository mirrors and images",
    group: 'worker',
    readBy: readBy('worker'),
  }),
  imageStoreMb: setting({
    env: 'OZ_IMAGE_STORE_MB',
    schema: intIn(64, 100 * 1024 * 1024),
    default: 20 * 1024,
    doc: 'the unpacked images the worker keeps in its cache, in MiB: past it the least recently used image no live run uses is removed',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  snapshotStoreMb: setting({
    env: 'OZ_SNAPSHOT_STORE_MB',
    schema: intIn(0, 100 * 1024 * 1024),
    default: 20 * 1024,
    doc: 'the warm-start snapshots the worker keeps in its cache, in MiB (0: none kept, every run starts cold): past it the least recently used is removed',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  registryAllowedHosts: setting({
    env: 'OZ_REGISTRY_ALLOWED_HOSTS',
    schema: listOf(',', allowedHost),
    default: [],
    shownDefault: 'none (public addresses only)',
    doc: "comma-separated `host`, `host:port`, address or CIDR of image registries the worker may pull from although loopback, private or link-local (a registry on the worker's own host is one: list it)",
    group: 'worker',
    readBy: readBy('worker'),
  }),
  insecureRegistries: setting({
    env: 'OZ_INSECURE_REGISTRIES',
    schema: listOf(',', registryHost),
    default: [],
    shownDefault: 'none (loopback registries only)',
    doc: 'comma-separated `host` or `host:port` of image registries reached over plain HTTP although not on loopback (every other registry needs TLS)',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  sandboxRoot: setting({
    env: 'OZ_SANDBOX_ROOT',
    schema: absolutePath,
    default: null,
    shownDefault: '`oz-sandboxes` in the OS temp dir',
    doc: 'where run directories (workspaces) are made: a directory this user owns, not writable by group or others, on a fast file system',
    group: 'worker',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  fileRepoRoots: setting({
    env: 'OZ_FILE_REPO_ROOTS',
    schema: listOf(':', absolutePath, false),
    default: [],
    shownDefault: 'none (refused)',
    doc: '`:`-separated directories `file://` repositories may come from',
    group: 'worker',
    readBy: readBy('worker'),
  }),
  claudeBin: setting({
    env: 'OZ_CLAUDE_BIN',
    schema: offOrAbsolutePath,
    default: null,
    shownDefault: "the installed npm package's binary",
    doc: 'the Claude Code binary given read-only to sandboxes (`off`: none)',
    group: 'worker',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  codexBin: setting({
    env: 'OZ_CODEX_BIN',
    schema: offOrAbsolutePath,
    default: null,
    shownDefault: "the installed npm package's binary",
    doc: 'the Codex binary given read-only to sandboxes (`off`: none)',
    group: 'worker',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  hostPath: setting({
    env: 'PATH',
    schema: anyText,
    default: SYSTEM_PATH,
    doc: 'where the worker finds host tools (bwrap, setpriv, git)',
    group: 'worker',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),

  // The built-in agent (a run's typed secrets take precedence over these keys).
  anthropicApiKey: setting({
    env: 'ANTHROPIC_API_KEY',
    schema: anyText,
    default: null,
    doc: "the worker's Anthropic key (`anthropic/…` models)",
    group: 'agent',
    readBy: readBy('worker'),
    emptyIsUnset: true,
    secret: true,
  }),
  anthropicBaseUrl: setting({
    env: 'ANTHROPIC_BASE_URL',
    schema: httpUrl,
    default: null,
    shownDefault: "Anthropic's API",
    doc: 'the Anthropic endpoint',
    group: 'agent',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  openaiApiKey: setting({
    env: 'OPENAI_API_KEY',
    schema: anyText,
    default: null,
    doc: "the worker's OpenAI key (`openai/…` models, Responses API)",
    group: 'agent',
    readBy: readBy('worker'),
    emptyIsUnset: true,
    secret: true,
  }),
  openaiBaseUrl: setting({
    env: 'OPENAI_BASE_URL',
    schema: httpUrl,
    default: null,
    shownDefault: "OpenAI's API",
    doc: 'the OpenAI endpoint',
    group: 'agent',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  compatibleBaseUrl: setting({
    env: 'OZ_OPENAI_COMPATIBLE_BASE_URL',
    schema: httpUrl,
    default: null,
    doc: 'a chat-completions server (Ollama, vLLM, LiteLLM) for `openai-compatible/…` models',
    group: 'agent',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  compatibleApiKey: setting({
    env: 'OZ_OPENAI_COMPATIBLE_API_KEY',
    schema: anyText,
    default: null,
    doc: "that server's key, if it needs one",
    group: 'agent',
    readBy: readBy('worker'),
    emptyIsUnset: true,
    secret: true,
  }),
  modelMaxRetries: setting({
    env: 'OZ_MODEL_MAX_RETRIES',
    schema: intIn(0, 10),
    default: 2,
    doc: 'retries of a failed model call before the run ends ERROR `model_unavailable`',
    group: 'agent',
    readBy: readBy('worker'),
  }),
  agentMaxSteps: setting({
    env: 'OZ_AGENT_MAX_STEPS',
    schema: intIn(1, 10_000),
    default: 100,
    doc: "the `oz` agent's steps where a run sets no budget",
    group: 'agent',
    readBy: readBy('worker'),
  }),
  agentMaxTokens: setting({
    env: 'OZ_AGENT_MAX_TOKENS',
    schema: intIn(1000, 1_000_000_000),
    default: 5_000_000,
    doc: "the `oz` agent's tokens where a run sets no budget",
    group: 'agent',
    readBy: readBy('worker'),
  }),
  agentMaxMinutes: setting({
    env: 'OZ_AGENT_MAX_MINUTES',
    schema: intIn(1, WEEK_MINUTES),
    default: 60,
    doc: "the `oz` agent's minutes where a run sets no budget",
    group: 'agent',
    readBy: readBy('worker'),
  }),

  // Results (docs/results.md).
  branchPrefix: setting({
    env: 'OZ_BRANCH_PREFIX',
    schema: branchPrefix,
    default: 'oz/',
    doc: "a run's branch is this prefix and the run's id",
    group: 'results',
    readBy: readBy('worker'),
  }),
  gitAuthorName: setting({
    env: 'OZ_GIT_AUTHOR_NAME',
    schema: gitAuthorName,
    default: 'Oz',
    doc: "author and committer name of a run's commit",
    group: 'results',
    readBy: readBy('worker'),
  }),
  gitAuthorEmail: setting({
    env: 'OZ_GIT_AUTHOR_EMAIL',
    schema: gitAuthorEmail,
    default: 'oz@localhost',
    doc: "author and committer email of a run's commit",
    group: 'results',
    readBy: readBy('worker'),
  }),
  githubUrl: setting({
    env: 'OZ_GITHUB_URL',
    schema: forgeUrl,
    default: 'https://github.com',
    doc: "repository URLs under it are GitHub's: pull requests through its API (GitHub Enterprise)",
    group: 'results',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  githubGitUrl: setting({
    env: 'OZ_GITHUB_GIT_URL',
    schema: forgeUrl,
    default: null,
    shownDefault: '`OZ_GITHUB_URL`',
    doc: 'where those repositories are fetched from and pushed to',
    group: 'results',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),
  githubApiUrl: setting({
    env: 'OZ_GITHUB_API_URL',
    schema: forgeUrl,
    default: 'https://api.github.com',
    doc: "GitHub's REST API (GitHub Enterprise: `https://HOST/api/v3`)",
    group: 'results',
    readBy: readBy('worker'),
    emptyIsUnset: true,
  }),

  // Host-side git (docs/sandboxes.md "Host-side git").
  hostGitMemoryMb: setting({
    env: 'OZ_HOST_GIT_MEMORY_MB',
    schema: intIn(64, 1_048_576),
    default: 2048,
    doc: "memory of host-side git, in MiB: each process's address space, and all of them together (cgroup)",
    group: 'hostGit',
    readBy: readBy('worker'),
  }),
  hostGitMaxFileMb: setting({
    env: 'OZ_HOST_GIT_MAX_FILE_MB',
    schema: intIn(16, 10_485_760),
    default: 16_384,
    doc: 'the largest file host-side git may write (a fetched pack), in MiB',
    group: 'hostGit',
    readBy: readBy('worker'),
  }),
  networkDefault: setting({
    env: 'OZ_NETWORK_DEFAULT',
    schema: oneOf(['off', 'allowlist', 'on']),
    default: 'off',
    doc: "the network policy of environments created without `network`, and of runs without an environment: `off` (none), `allowlist` (only the domains of `OZ_NETWORK_DEFAULT_PRESETS`, through the worker's proxy) or `on` (any public address)",
    group: 'network',
    readBy: readBy('server'),
  }),
  networkDefaultPresets: setting({
    env: 'OZ_NETWORK_DEFAULT_PRESETS',
    schema: listOf(',', presetName),
    default: [],
    shownDefault: 'none',
    doc: 'comma-separated presets (`npm`, `pypi`, `github`, …) that environments with the default policy `allowlist` allow',
    group: 'network',
    readBy: readBy('server'),
  }),
  networkPresetsFile: setting({
    env: 'OZ_NETWORK_PRESETS_FILE',
    schema: absolutePath,
    default: null,
    shownDefault: 'built-in presets',
    doc: 'a JSON file of presets, `{"npm": ["registry.example.com", "*.mirror.example.com:8443"]}`, each replacing or adding to the built-in ones (npm, pypi, crates, go, maven, rubygems, debian, github); read at start and given to every claim',
    group: 'network',
    readBy: readBy('server'),
    emptyIsUnset: true,
  }),
  gitAllowedHosts: setting({
    env: 'OZ_GIT_ALLOWED_HOSTS',
    schema: listOf(',', allowedHost),
    default: [],
    shownDefault: 'none (public addresses only)',
    doc: "comma-separated `host`, `host:port`, address, `[v6]:port` or CIDR that host-side git may reach although loopback, private or link-local; `OZ_GITHUB_GIT_URL`'s host is allowed implicitly",
    group: 'hostGit',
    readBy: readBy('worker'),
  }),

  // Per-run limits: defaults, and the ceilings the server enforces.
  sandboxPids: limitDefault(SANDBOX_LIMITS.pids),
  sandboxMemoryMb: limitDefault(SANDBOX_LIMITS.memoryBytes),
  sandboxDiskMb: limitDefault(SANDBOX_LIMITS.diskBytes),
  sandboxOutputMb: limitDefault(SANDBOX_LIMITS.outputBytes),
  sandboxCpus: limitDefault(SANDBOX_LIMITS.cpus),
  sandboxRuntimeMinutes: limitDefault(SANDBOX_LIMITS.maxRuntimeMs),
  sandboxMaxPids: limitCeiling(SANDBOX_LIMITS.pids),
  sandboxMaxMemoryMb: limitCeiling(SANDBOX_LIMITS.memoryBytes),
  sandboxMaxDiskMb: limitCeiling(SANDBOX_LIMITS.diskBytes),
  sandboxMaxOutputMb: limitCeiling(SANDBOX_LIMITS.outputBytes),
  sandboxMaxCpus: limitCeiling(SANDBOX_LIMITS.cpus),
  sandboxMaxRuntimeMinutes: limitCeiling(SANDBOX_LIMITS.maxRuntimeMs),

  // The CLI: flags win over these, and the CLI config file (which `oz server` writes) over the defaults.
  apiKey: setting({
    env: 'WARP_API_KEY',
    alsoEnv: ['OZ_API_KEY'],
    flag: flag('--api-key', 'key', 'oz'),
    schema: anyText,
    default: null,
    shownDefault: 'from the CLI config (a local `oz server` writes one)',
    doc: 'the API key',
    group: 'cli',
    readBy: readBy('cli'),
    emptyIsUnset: true,
    secret: true,
  }),
  serverUrl: setting({
    env: 'OZ_SERVER_URL',
    flag: flag('--server-url', 'url', 'oz'),
    schema: anyText,
    default: null,
    shownDefault: `from the CLI config, else \`http://127.0.0.1:${DEFAULT_PORT}\``,
    doc: 'the Oz server',
    group: 'cli',
    readBy: readBy('cli'),
    emptyIsUnset: true,
  }),
  outputFormat: setting({
    env: 'WARP_OUTPUT_FORMAT',
    flag: flag('--output-format', 'format', 'oz'),
    schema: anyText,
    default: null,
    shownDefault: '`pretty`',
    doc: 'pretty, json, ndjson or text',
    group: 'cli',
    readBy: readBy('cli'),
    emptyIsUnset: true,
  }),
  agentConfigFile: setting({
    env: 'WARP_AGENT_CONFIG_FILE',
    schema: anyText,
    default: null,
    shownDefault: 'none',
    doc: '`oz agent run-cloud`: the agent config file (JSON or YAML) when `-f` is not given',
    group: 'cli',
    readBy: readBy('cli'),
    emptyIsUnset: true,
  }),
};

export type Settings = typeof SETTINGS;
export type SettingName = keyof Settings;

/**
 * Flags that are no setting (no variable): they belong to one run of one
 * command. Declared here so `--help` and the README come from one place.
 */
export const COMMAND_LINE_OPTIONS: readonly CommandLineOption[] = [
  { flag: '--debug', on: 'oz', group: 'cli', readBy: 'cli', doc: 'trace requests and responses to stderr (keys masked)', shownDefault: 'off' },
  { flag: '--no-worker', on: 'server', group: 'server', readBy: 'server', doc: 'do not run the embedded worker (scaled deployments)', shownDefault: 'embedded worker on' },
  { flag: '--server', arg: 'url', on: 'worker', group: 'worker', readBy: 'worker', required: true, doc: 'the Oz server, e.g. https://oz.example.com', shownDefault: 'required' },
  {
    flag: '--token-file',
    arg: 'file',
    on: 'worker',
    group: 'worker',
    readBy: 'worker',
    doc: 'read the worker token from this file (one line; it must not be readable by others: chmod 600)',
    shownDefault: 'the token in `OZ_WORKER_TOKEN`',
  },
  {
    flag: '--token',
    arg: 'token',
    on: 'worker',
    group: 'worker',
    readBy: 'worker',
    doc: 'deprecated: the worker token itself, visible to every local user in the process list; use OZ_WORKER_TOKEN or --token-file',
    shownDefault: 'unset',
  },
  { flag: '--allow-insecure-http', on: 'worker', group: 'worker', readBy: 'worker', doc: 'allow a plain-HTTP server URL that is not loopback', shownDefault: 'refused' },
];
