/** A reusable definition of where runs execute (docs/design.md "Concepts"). */
import { MIB } from './units.js';

export const NETWORK_POLICIES = ['off', 'allowlist', 'on'] as const;
export type NetworkPolicy = (typeof NETWORK_POLICIES)[number];

export interface RepoSpec {
  /** Any git URL; `owner/repo` is stored as its GitHub https URL. */
  url: string;
  branch?: string | undefined;
}

export interface EnvironmentLimits {
  maxRuntimeMs?: number;
  pids?: number;
  memoryBytes?: number;
  diskBytes?: number;
  outputBytes?: number;
  /** CPU time as a number of cores (fractional: 0.5 = half a core). */
  cpus?: number;
}

/** Every per-run limit, set: the operator's defaults and ceilings, a team's effective ones. */
export type RunLimits = Required<EnvironmentLimits>;

/**
 * The limits as the API names them (environment `limits`, a team's
 * `limit_ceilings`), with the factor from the stored unit to the user's.
 */
export const LIMIT_FIELDS: readonly { key: keyof RunLimits; api: string; unit: number }[] = [
  { key: 'maxRuntimeMs', api: 'max_runtime_seconds', unit: 1000 },
  { key: 'pids', api: 'pids', unit: 1 },
  { key: 'memoryBytes', api: 'memory_mb', unit: MIB },
  { key: 'diskBytes', api: 'disk_mb', unit: MIB },
  { key: 'outputBytes', api: 'output_mb', unit: MIB },
  { key: 'cpus', api: 'cpus', unit: 1 },
];

/** Each limit of `base`, lowered to `cap`'s where `cap` sets one. */
export function capLimits(base: RunLimits, cap: EnvironmentLimits): RunLimits {
  const out = { ...base };
  for (const { key } of LIMIT_FIELDS) {
    const c = cap[key];
    if (c !== undefined && c < out[key]) out[key] = c;
  }
  return out;
}

/** The first limit of `limits` above its ceiling, in the user's units; null when all fit. */
export function limitAbove(limits: EnvironmentLimits, ceilings: RunLimits): { api: string; value: number; max: number } | null {
  for (const { key, api, unit } of LIMIT_FIELDS) {
    const value = limits[key];
    if (value !== undefined && value > ceilings[key]) return { api, value: value / unit, max: Math.floor((ceilings[key] / unit) * 100) / 100 };
  }
  return null;
}

export interface EnvironmentConfig {
  dockerImage?: string;
  /** Whom the harness runs as on the image (`name`, `uid`, `name:group`, `uid:gid`), instead of the image's `User`; never root. */
  agentUser?: string;
  repos: RepoSpec[];
  setupCommands: string[];
  /**
   * Run after a warm start (a run restored from the environment's setup
   * snapshot) instead of the setup commands: incremental steps such as
   * `npm install`. Optional: rows stored before it existed have none.
   */
  maintenanceCommands?: string[];
  env: Record<string, string>;
  network: NetworkPolicy;
  /** Under `allowlist`: domain rules (src/core/network-policy.ts) and preset names; absent on rows stored before them. */
  allowDomains?: string[];
  allowPresets?: string[];
  /** Internal ranges (CIDR) its runs may reach anyway, under `allowlist` and `on`: set by an admin only. */
  allowInternalRanges?: string[];
  secrets: string[];
  limits: EnvironmentLimits;
  /**
   * The name or label of the workers its runs go to (docs/api.md "Worker
   * pools"), where a run sets no `worker_host` of its own; absent = any worker.
   */
  workerHost?: string;
}

/** Team-owned, or personal to one user of the team. */
export type Scope = { type: 'team' } | { type: 'user'; userId: string };

export interface Environment {
  id: string;
  teamId: string;
  scope: Scope;
  creatorId: string | null;
  /**
   * Who last changed the environment (create or PATCH); null when unknown
   * (changed before this was recorded). A run gets its creator's personal
   * secrets only when that is the creator (docs/secrets.md).
   */
  updatedBy: string | null;
  name: string;
  description: string | null;
  config: EnvironmentConfig;
  setupFailed: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface NewEnvironment {
  teamId: string;
  scope: Scope;
  creatorId: string | null;
  name: string;
  description: string | null;
  config: EnvironmentConfig;
}

export interface EnvironmentPatch {
  /** The user making the change (absent for the server's own writes, such as `setupFailed`). */
  updatedBy?: string;
  name?: string;
  description?: string | null;
  config?: EnvironmentConfig;
  setupFailed?: boolean;
}

export function defaultEnvironmentConfig(): EnvironmentConfig {
  return { repos: [], setupCommands: [], maintenanceCommands: [], env: {}, network: 'off', secrets: [], limits: {} };
}
