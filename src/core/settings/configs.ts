import type { RunLimits } from '../environment.js';
import { OzError } from '../errors.js';
import { MIB } from '../units.js';
import { parseSettings, type ParsedSettings, type SettingsOf } from './load.js';
import { cliConfigPath } from './paths.js';
import type { Env } from './setting.js';
import { CEILING_FACTOR, SANDBOX_LIMITS, ceilingVariable, limitVariable, type SandboxBackendName, type SandboxLimit, type SettingName } from './table.js';

/**
 * The per-process configs, folded from parsed settings: groups (agent,
 * results, host git, event streams, per-run limits) are assembled here and
 * derived values computed (units, the models list, the ceilings). Field
 * names are those of the settings table unless a group renames them.
 */

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
  /** The AI SDK's retries of a failed model call. */
  maxRetries: number;
  /** Budgets where a run sets none. */
  maxSteps: number;
  maxTokens: number;
  maxTimeMs: number;
}

/** Limits of `GET /agent/runs/{id}/events` (docs/api.md "Event streams"). Counts are per server process. */
export interface EventStreamSettings {
  readonly heartbeatMs: number;
  readonly unwritableTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxPerKey: number;
  readonly maxPerTeam: number;
}

/**
 * Host-side git (docs/sandboxes.md "Host-side git"): every fetch into a
 * mirror and every push runs under these limits, and only to public
 * addresses unless allowed here (the host of `OZ_GITHUB_GIT_URL` is allowed
 * implicitly).
 */
export interface HostGitSettings {
  memoryBytes: number;
  maxFileBytes: number;
  allowedHosts: readonly string[];
}

export interface ResultsSettings {
  branchPrefix: string;
  authorName: string;
  authorEmail: string;
  githubUrl: string;
  githubGitUrl: string;
  githubApiUrl: string;
}

/** Per-run limits where the environment sets none, and the most an environment or a run may set. */
interface SandboxLimitSettings {
  readonly sandboxDefaults: Readonly<RunLimits>;
  readonly sandboxMaxima: Readonly<RunLimits>;
}

export interface FollowupSettings {
  readonly idleTimeoutMinutes: number;
  readonly workspaceMaxBytes: number;
  readonly workspaceRetentionMs: number;
}

/** What the API server reads (`oz server`, `oz server --no-worker`, `oz server rotate-master-key`). */
export interface ServerConfig extends SandboxLimitSettings {
  readonly dataDir: string;
  readonly databaseUrl: string | null;
  readonly leaseTtlMs: number;
  readonly host: string;
  readonly port: number;
  readonly defaultModel: string | null;
  /** Offered by `/agent/models` besides the catalog: the default model first, then `OZ_MODELS`. */
  readonly models: readonly string[];
  /** A file of model catalog entries (`OZ_MODEL_CATALOG`), or null for the built-in ones. */
  readonly modelCatalog: string | null;
  readonly teamMaxConcurrentRuns: number;
  /** Follow-ups: the idle timeout of runs that set none, and the bound of a workspace snapshot. */
  readonly followups: FollowupSettings;
  /** Believe a reverse proxy's X-Forwarded-* headers (OZ_TRUST_PROXY). */
  readonly trustProxy: boolean;
  /** How long a dashboard session lasts (ms). */
  readonly webSessionTtlMs: number;
  /** The default network policy and presets (`OZ_NETWORK_*`); the presets file is read by src/main/server.ts. */
  readonly network: { readonly defaultPolicy: 'off' | 'allowlist' | 'on'; readonly defaultPresets: readonly string[]; readonly presetsFile: string | null };
  /** The CLI's config file, where the first start writes the admin key. */
  readonly cliConfigPath: string;
  readonly logLevel: string;
  readonly sweepIntervalMs: number;
  readonly eventPollMs: number;
  readonly eventStreams: EventStreamSettings;
  readonly masterKey: Buffer | null;
  readonly newMasterKey: Buffer | null;
}

/** What a worker reads (`oz worker`, and the worker embedded in `oz server`). */
export interface WorkerConfig extends SandboxLimitSettings {
  readonly defaultModel: string | null;
  readonly modelCatalog: string | null;
  readonly agent: AgentSettings;
  readonly results: ResultsSettings;
  /** A path, `off`, or null = the installed npm packages', if any. */
  readonly claudeBin: string | null;
  readonly codexBin: string | null;
  readonly logLevel: string;
  readonly workerConcurrency: number;
  /** Sandboxes started ahead of claims (`OZ_SPARE_SANDBOXES`); 0 = none. */
  readonly spareSandboxes: number;
  /** The worker's name and labels: which routed runs (`worker_host`) it may claim. */
  readonly workerName: string;
  readonly workerLabels: readonly string[];
  readonly killGraceMs: number;
  readonly drainGraceMs: number;
  readonly maxOutputBytes: number;
  readonly hostPath: string;
  readonly cacheDir: string;
  /** Null = `oz-sandboxes` under the OS temp dir. */
  readonly sandboxRoot: string | null;
  /** Image registries reached over plain HTTP although not on loopback (`OZ_INSECURE_REGISTRIES`). */
  readonly insecureRegistries: readonly string[];
  /** Registries reachable although loopback, private, link-local (`OZ_REGISTRY_ALLOWED_HOSTS`). */
  readonly registryAllowedHosts: readonly string[];
  /** The unpacked images' size the store keeps (`OZ_IMAGE_STORE_MB`). */
  readonly imageStoreBytes: number;
  /** The warm-start snapshots' size the store keeps (`OZ_SNAPSHOT_STORE_MB`); 0 = none. */
  readonly snapshotStoreBytes: number;
  readonly fileRepoRoots: readonly string[];
  readonly hostGit: HostGitSettings;
}

/** What `oz server` reads: the server's settings and its embedded worker's. */
export interface OzConfig extends ServerConfig, WorkerConfig {}

/** What a worker's composition root takes besides its config: the sandbox backend, and (`oz worker`) the token from the environment. */
export interface WorkerLaunch {
  readonly sandboxBackend: SandboxBackendName;
  readonly workerToken: string | null;
}

/** What the CLI takes from its environment (flags win over these; the commands validate what they use). */
export interface CliEnvironment {
  readonly apiKey: string | null;
  readonly serverUrl: string | null;
  readonly outputFormat: string | null;
  /** WARP_AGENT_CONFIG_FILE: `oz agent run-cloud`'s config file when `-f` is not given. */
  readonly agentConfigFile: string | null;
  readonly configPath: string;
  readonly isTty: boolean;
  /** A browser can be opened here (`oz open`): macOS and Windows, or a Linux/BSD session with DISPLAY or WAYLAND_DISPLAY. */
  readonly hasDisplay: boolean;
}

/** A limit's default and ceiling, in the run limit's unit: an unset ceiling is CEILING_FACTOR × the default (within the bound), and never below it. */
function limitPair(limit: SandboxLimit, value: number, ceilingSet: number | null): [number, number] {
  const ceiling = ceilingSet ?? Math.min(limit.max, value * CEILING_FACTOR);
  if (ceiling < value) {
    const variable = ceilingVariable(limit);
    throw new OzError('invalid_request', `${variable} (${ceiling}) is below ${limitVariable(limit)} (${value}): the ceiling must be at least the default`, { reason: variable });
  }
  return [value * limit.scale, ceiling * limit.scale];
}

type LimitNames =
  | 'sandboxPids'
  | 'sandboxMemoryMb'
  | 'sandboxDiskMb'
  | 'sandboxOutputMb'
  | 'sandboxCpus'
  | 'sandboxRuntimeMinutes'
  | 'sandboxMaxPids'
  | 'sandboxMaxMemoryMb'
  | 'sandboxMaxDiskMb'
  | 'sandboxMaxOutputMb'
  | 'sandboxMaxCpus'
  | 'sandboxMaxRuntimeMinutes';

function sandboxLimits(s: ParsedSettings<LimitNames>): SandboxLimitSettings {
  const [pids, maxPids] = limitPair(SANDBOX_LIMITS.pids, s.sandboxPids, s.sandboxMaxPids);
  const [memoryBytes, maxMemoryBytes] = limitPair(SANDBOX_LIMITS.memoryBytes, s.sandboxMemoryMb, s.sandboxMaxMemoryMb);
  const [diskBytes, maxDiskBytes] = limitPair(SANDBOX_LIMITS.diskBytes, s.sandboxDiskMb, s.sandboxMaxDiskMb);
  const [outputBytes, maxOutputBytes] = limitPair(SANDBOX_LIMITS.outputBytes, s.sandboxOutputMb, s.sandboxMaxOutputMb);
  const [cpus, maxCpus] = limitPair(SANDBOX_LIMITS.cpus, s.sandboxCpus, s.sandboxMaxCpus);
  const [maxRuntimeMs, maxMaxRuntimeMs] = limitPair(SANDBOX_LIMITS.maxRuntimeMs, s.sandboxRuntimeMinutes, s.sandboxMaxRuntimeMinutes);
  return {
    sandboxDefaults: Object.freeze({ pids, memoryBytes, diskBytes, outputBytes, cpus, maxRuntimeMs }),
    sandboxMaxima: Object.freeze({
      pids: maxPids,
      memoryBytes: maxMemoryBytes,
      diskBytes: maxDiskBytes,
      outputBytes: maxOutputBytes,
      cpus: maxCpus,
      maxRuntimeMs: maxMaxRuntimeMs,
    }),
  };
}

const LIMIT_NAMES: readonly LimitNames[] = [
  'sandboxPids',
  'sandboxMemoryMb',
  'sandboxDiskMb',
  'sandboxOutputMb',
  'sandboxCpus',
  'sandboxRuntimeMinutes',
  'sandboxMaxPids',
  'sandboxMaxMemoryMb',
  'sandboxMaxDiskMb',
  'sandboxMaxOutputMb',
  'sandboxMaxCpus',
  'sandboxMaxRuntimeMinutes',
];

/** An empty environment's values of some settings: their defaults. */
const defaultsOf = <N extends SettingName>(names: readonly N[]): ParsedSettings<N> => parseSettings(names, { env: {}, command: 'oz' });

/** The per-run defaults and ceilings of an empty configuration. */
export function defaultSandboxLimits(): { defaults: RunLimits; maxima: RunLimits } {
  const { sandboxDefaults, sandboxMaxima } = sandboxLimits(defaultsOf(LIMIT_NAMES));
  return { defaults: sandboxDefaults, maxima: sandboxMaxima };
}

type EventStreamNames = 'eventStreamHeartbeatMs' | 'eventStreamUnwritableTimeoutMs' | 'eventStreamIdleTimeoutMs' | 'eventStreamsPerKey' | 'eventStreamsPerTeam';

function eventStreams(s: ParsedSettings<EventStreamNames>): EventStreamSettings {
  return Object.freeze({
    heartbeatMs: s.eventStreamHeartbeatMs,
    unwritableTimeoutMs: s.eventStreamUnwritableTimeoutMs,
    idleTimeoutMs: s.eventStreamIdleTimeoutMs,
    maxPerKey: s.eventStreamsPerKey,
    maxPerTeam: s.eventStreamsPerTeam,
  });
}

/** The event stream limits of an empty configuration. */
export const DEFAULT_EVENT_STREAMS: EventStreamSettings = eventStreams(
  defaultsOf(['eventStreamHeartbeatMs', 'eventStreamUnwritableTimeoutMs', 'eventStreamIdleTimeoutMs', 'eventStreamsPerKey', 'eventStreamsPerTeam']),
);

export function serverConfig(s: SettingsOf<'server'>, env: Env): ServerConfig {
  return Object.freeze({
    dataDir: s.dataDir,
    databaseUrl: s.databaseUrl,
    leaseTtlMs: s.leaseTtlMs,
    host: s.host,
    port: s.port,
    defaultModel: s.defaultModel,
    models: Object.freeze([...new Set([...(s.defaultModel ? [s.defaultModel] : []), ...s.models])]),
    modelCatalog: s.modelCatalog,
    teamMaxConcurrentRuns: s.teamMaxConcurrentRuns,
    followups: Object.freeze({
      idleTimeoutMinutes: s.idleTimeoutMinutes,
      workspaceMaxBytes: s.workspaceSnapshotMaxMb * 1024 * 1024,
      workspaceRetentionMs: s.workspaceSnapshotRetentionDays * 24 * 3600_000,
    }),
    trustProxy: s.trustProxy === 'on',
    webSessionTtlMs: s.webSessionHours * 3600_000,
    network: Object.freeze({ defaultPolicy: s.networkDefault, defaultPresets: Object.freeze([...s.networkDefaultPresets]), presetsFile: s.networkPresetsFile }),
    cliConfigPath: cliConfigPath(env),
    logLevel: s.logLevel,
    sweepIntervalMs: s.sweepIntervalMs,
    eventPollMs: s.eventPollMs,
    eventStreams: eventStreams(s),
    masterKey: s.masterKey,
    newMasterKey: s.newMasterKey,
    ...sandboxLimits(s),
  });
}

/** Only the providers that are set (the harness treats a missing key and an absent one alike). */
function providers(s: SettingsOf<'worker'>): ModelProviderSettings {
  const out: ModelProviderSettings = {};
  for (const name of ['anthropicApiKey', 'anthropicBaseUrl', 'openaiApiKey', 'openaiBaseUrl', 'compatibleBaseUrl', 'compatibleApiKey'] as const) {
    const value = s[name];
    if (value !== null) out[name] = value;
  }
  return out;
}

export function workerConfig(s: SettingsOf<'worker'>): WorkerConfig {
  return Object.freeze({
    defaultModel: s.defaultModel,
    modelCatalog: s.modelCatalog,
    agent: {
      providers: providers(s),
      maxRetries: s.modelMaxRetries,
      maxSteps: s.agentMaxSteps,
      maxTokens: s.agentMaxTokens,
      maxTimeMs: s.agentMaxMinutes * 60_000,
    },
    results: {
      branchPrefix: s.branchPrefix,
      authorName: s.gitAuthorName,
      authorEmail: s.gitAuthorEmail,
      githubUrl: s.githubUrl,
      githubGitUrl: s.githubGitUrl ?? s.githubUrl,
      githubApiUrl: s.githubApiUrl,
    },
    claudeBin: s.claudeBin,
    codexBin: s.codexBin,
    logLevel: s.logLevel,
    workerConcurrency: s.workerConcurrency,
    spareSandboxes: s.spareSandboxes,
    workerName: s.workerName,
    workerLabels: s.workerLabels,
    killGraceMs: s.killGraceMs,
    drainGraceMs: s.drainGraceMs,
    maxOutputBytes: s.maxOutputBytes,
    hostPath: s.hostPath,
    cacheDir: s.cacheDir,
    sandboxRoot: s.sandboxRoot,
    insecureRegistries: s.insecureRegistries,
    registryAllowedHosts: s.registryAllowedHosts,
    imageStoreBytes: s.imageStoreMb * MIB,
    snapshotStoreBytes: s.snapshotStoreMb * MIB,
    fileRepoRoots: s.fileRepoRoots,
    hostGit: Object.freeze({
      memoryBytes: s.hostGitMemoryMb * MIB,
      maxFileBytes: s.hostGitMaxFileMb * MIB,
      allowedHosts: s.gitAllowedHosts,
    }),
    ...sandboxLimits(s),
  });
}

export function workerLaunch(s: SettingsOf<'worker'>): WorkerLaunch {
  return Object.freeze({ sandboxBackend: s.sandboxBackend, workerToken: s.workerToken });
}

export function cliEnvironment(s: SettingsOf<'cli'>, env: Env, isTty: boolean): CliEnvironment {
  const hasDisplay = process.platform === 'darwin' || process.platform === 'win32' || Boolean(env.DISPLAY) || Boolean(env.WAYLAND_DISPLAY);
  return Object.freeze({
    apiKey: s.apiKey,
    serverUrl: s.serverUrl,
    outputFormat: s.outputFormat,
    agentConfigFile: s.agentConfigFile,
    configPath: cliConfigPath(env),
    isTty,
    hasDisplay,
  });
}
