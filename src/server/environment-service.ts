import type { EnvironmentConfig, EnvironmentLimits, RepoSpec } from '../core/environment.js';
import { defaultEnvironmentConfig } from '../core/environment.js';
import { OzError } from '../core/errors.js';
import { BUILTIN_PRESETS, hasPreset, type NetworkPresets } from '../core/network-policy.js';
import type { NetworkPolicy } from '../core/environment.js';
import { routedHost } from '../core/worker-pool.js';
import { githubRepoUrl } from './presenters/environment.js';
import type { CreateEnvironmentBody, DevcontainerFields, DevcontainerSource, PatchEnvironmentBody } from '../api/environments.js';

type Limits = NonNullable<CreateEnvironmentBody['limits']>;

export function toLimits(limits: Limits): EnvironmentLimits {
  const mb = 2 ** 20;
  return {
    ...(limits.max_runtime_seconds !== undefined ? { maxRuntimeMs: limits.max_runtime_seconds * 1000 } : {}),
    ...(limits.pids !== undefined ? { pids: limits.pids } : {}),
    ...(limits.memory_mb !== undefined ? { memoryBytes: limits.memory_mb * mb } : {}),
    ...(limits.disk_mb !== undefined ? { diskBytes: limits.disk_mb * mb } : {}),
    ...(limits.output_mb !== undefined ? { outputBytes: limits.output_mb * mb } : {}),
    ...(limits.cpus !== undefined ? { cpus: limits.cpus } : {}),
  };
}

/** `github_repos` become https URLs; with `repos` they form one list, deduplicated by URL (first wins). */
function mergeRepos(github: { owner: string; repo: string }[] | undefined, repos: RepoSpec[] | undefined): RepoSpec[] {
  const all: RepoSpec[] = [...(github ?? []).map((g) => ({ url: githubRepoUrl(g.owner, g.repo) })), ...(repos ?? [])];
  const seen = new Set<string>();
  return all.filter((r) => (seen.has(r.url) ? false : (seen.add(r.url), true)));
}

function rejectProviders(body: { providers?: unknown }): void {
  if (body.providers !== undefined) {
    throw new OzError('feature_not_available', 'providers (cloud provider auth) is not available on this server yet', { reason: 'providers' });
  }
}

/** A devcontainer.json's fields (src/server/devcontainer/), and the repository it came from. */
export interface FromDevcontainer {
  source: DevcontainerSource;
  fields: DevcontainerFields;
}

/**
 * A new environment's config. With a devcontainer.json, each field the
 * request gives wins, as a whole, over the file's; with no repositories given,
 * the environment has the file's repository.
 */
/** The deployment's network settings (`OZ_NETWORK_*`, docs/network.md). */
export interface NetworkSettings {
  presets: NetworkPresets;
  /** The policy of environments created without one, and of runs without an environment. */
  defaultPolicy: NetworkPolicy;
  /** The presets such environments allow when the default is `allowlist`. */
  defaultPresets: readonly string[];
}

export const DEFAULT_NETWORK_SETTINGS: NetworkSettings = { presets: BUILTIN_PRESETS, defaultPolicy: 'off', defaultPresets: [] };

/**
 * What only the deployment can judge about a config's network fields: each
 * preset exists, and internal ranges change only by an admin's hand. Throws a
 * 400 or 403 naming the field; nothing is written then.
 */
export function checkNetworkFields(next: EnvironmentConfig, before: EnvironmentConfig | null, network: NetworkSettings, isAdmin: boolean): void {
  const unknown = (next.allowPresets ?? []).filter((name) => !hasPreset(network.presets, name));
  if (unknown.length > 0) {
    throw new OzError(
      'invalid_request',
      `allow_presets: no preset named ${unknown.map((n) => `"${n}"`).join(', ')}; this server has ${Object.keys(network.presets).sort().join(', ')}`,
      {
        reason: 'allow_presets',
      },
    );
  }
  const ranges = (config: EnvironmentConfig | null): string => JSON.stringify([...(config?.allowInternalRanges ?? [])].sort());
  // An admin's grant covers what the environment runs as it was when granted: a member changing its
  // setup, image or policy would carry the grant to code the admin never saw.
  if (!isAdmin && (before?.allowInternalRanges ?? []).length > 0) {
    throw new OzError('not_authorized', 'allow_internal_ranges: this environment may reach internal addresses, so only an admin may change it', {
      reason: 'allow_internal_ranges',
    });
  }
  if (!isAdmin && ranges(next) !== ranges(before)) {
    throw new OzError('not_authorized', 'allow_internal_ranges: only an admin may let an environment reach internal addresses', { reason: 'allow_internal_ranges' });
  }
}

export function configFromCreate(body: CreateEnvironmentBody, devcontainer?: FromDevcontainer, network: NetworkSettings = DEFAULT_NETWORK_SETTINGS): EnvironmentConfig {
  rejectProviders(body);
  const base = defaultEnvironmentConfig();
  const file = devcontainer?.fields ?? {};
  const dockerImage = body.docker_image ?? file.docker_image;
  const agentUser = body.agent_user ?? file.agent_user;
  const noRepos = body.github_repos === undefined && body.repos === undefined;
  const workerHost = routedHost(body.worker_host);
  const repos = devcontainer && noRepos ? [{ url: githubRepoUrl(devcontainer.source.owner, devcontainer.source.repo) }] : mergeRepos(body.github_repos, body.repos);
  return {
    ...base,
    ...(dockerImage !== undefined ? { dockerImage } : {}),
    ...(agentUser !== undefined ? { agentUser } : {}),
    repos,
    setupCommands: body.setup_commands ?? file.setup_commands ?? [],
    maintenanceCommands: body.maintenance_commands ?? file.maintenance_commands ?? [],
    env: body.env ?? file.env ?? {},
    network: body.network ?? network.defaultPolicy,
    allowDomains: body.allow_domains ?? [],
    // The deployment's default presets, for an environment that takes its default policy and names no rules.
    allowPresets:
      body.allow_presets ?? (body.network === undefined && body.allow_domains === undefined && network.defaultPolicy === 'allowlist' ? [...network.defaultPresets] : []),
    allowInternalRanges: body.allow_internal_ranges ?? [],
    secrets: [...new Set(body.secrets ?? [])],
    limits: body.limits ? toLimits(body.limits) : {},
    // `warp` (any worker) is stored as nothing.
    ...(workerHost !== null ? { workerHost } : {}),
  };
}

/** Apply a PATCH to a stored config: each given field replaces the stored one. */
export function configFromPatch(current: EnvironmentConfig, body: PatchEnvironmentBody): EnvironmentConfig {
  rejectProviders(body);
  const next: EnvironmentConfig = { ...current };
  if (body.docker_image === null) delete next.dockerImage;
  else if (body.docker_image !== undefined) next.dockerImage = body.docker_image;
  if (body.agent_user === null) delete next.agentUser;
  else if (body.agent_user !== undefined) next.agentUser = body.agent_user;
  if (body.github_repos !== undefined || body.repos !== undefined) {
    const keepGithub = body.github_repos === undefined;
    const keepOther = body.repos === undefined;
    const isGithub = (r: RepoSpec) => r.url.startsWith('https://github.com/');
    next.repos = mergeRepos(body.github_repos, [
      ...(keepGithub ? current.repos.filter(isGithub) : []),
      ...(keepOther ? current.repos.filter((r) => !isGithub(r)) : (body.repos ?? [])),
    ]);
  }
  if (body.setup_commands !== undefined) next.setupCommands = body.setup_commands;
  if (body.maintenance_commands !== undefined) next.maintenanceCommands = body.maintenance_commands;
  if (body.env !== undefined) next.env = body.env;
  if (body.network !== undefined) next.network = body.network;
  if (body.allow_domains !== undefined) next.allowDomains = body.allow_domains;
  if (body.allow_presets !== undefined) next.allowPresets = body.allow_presets;
  if (body.allow_internal_ranges !== undefined) next.allowInternalRanges = body.allow_internal_ranges;
  if (body.secrets !== undefined) next.secrets = [...new Set(body.secrets)];
  if (body.limits !== undefined) next.limits = toLimits(body.limits);
  if (body.worker_host !== undefined) {
    const host = routedHost(body.worker_host);
    if (host === null) delete next.workerHost;
    else next.workerHost = host;
  }
  return next;
}
