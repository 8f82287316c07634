/** A reusable definition of where runs execute (DESIGN.md "Concepts"). */

export const NETWORK_POLICIES = ['off', 'on'] as const;
export type NetworkPolicy = (typeof NETWORK_POLICIES)[number];

export interface RepoSpec {
  /** Any git URL; `owner/repo` is stored as its GitHub https URL. */
  url: string;
  branch?: string;
}

export interface EnvironmentLimits {
  maxRuntimeMs?: number;
  pids?: number;
  memoryBytes?: number;
  diskBytes?: number;
  outputBytes?: number;
}

export interface EnvironmentConfig {
  dockerImage?: string;
  repos: RepoSpec[];
  setupCommands: string[];
  env: Record<string, string>;
  network: NetworkPolicy;
  secrets: string[];
  limits: EnvironmentLimits;
}

/** Team-owned, or personal to one user of the team. */
export type Scope = { type: 'team' } | { type: 'user'; userId: string };

export interface Environment {
  id: string;
  teamId: string;
  scope: Scope;
  creatorId: string | null;
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
  name?: string;
  description?: string | null;
  config?: EnvironmentConfig;
  setupFailed?: boolean;
}

export function defaultEnvironmentConfig(): EnvironmentConfig {
  return { repos: [], setupCommands: [], env: {}, network: 'off', secrets: [], limits: {} };
}
