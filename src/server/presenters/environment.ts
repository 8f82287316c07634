import type { EnvironmentItem, EnvironmentSnapshotItem, LimitsItem } from '../../api/environments.js';
import { toRfc3339 } from '../../core/clock.js';
import type { Environment, EnvironmentLimits, RepoSpec } from '../../core/environment.js';
import type { EnvironmentSnapshot } from '../../core/environment-snapshot.js';

const GITHUB_HTTPS = /^https:\/\/github\.com\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?$/;

export function githubRepoUrl(owner: string, repo: string): string {
  return `https://github.com/${owner}/${repo}.git`;
}

/** The GitHub entries among the repos, as the spec's `github_repos`. */
export function githubReposOf(repos: readonly RepoSpec[]): { owner: string; repo: string }[] {
  const out: { owner: string; repo: string }[] = [];
  for (const r of repos) {
    const m = GITHUB_HTTPS.exec(r.url);
    if (m?.[1] && m[2]) out.push({ owner: m[1], repo: m[2] });
  }
  return out;
}

export function presentLimits(limits: EnvironmentLimits): LimitsItem {
  const out: LimitsItem = {};
  if (limits.maxRuntimeMs !== undefined) out.max_runtime_seconds = Math.round(limits.maxRuntimeMs / 1000);
  if (limits.pids !== undefined) out.pids = limits.pids;
  if (limits.memoryBytes !== undefined) out.memory_mb = Math.round(limits.memoryBytes / 2 ** 20);
  if (limits.diskBytes !== undefined) out.disk_mb = Math.round(limits.diskBytes / 2 ** 20);
  if (limits.outputBytes !== undefined) out.output_mb = Math.round(limits.outputBytes / 2 ** 20);
  if (limits.cpus !== undefined) out.cpus = limits.cpus;
  return out;
}

/** The spec's CloudEnvironmentConfig, with our fields beside its own (a CloudEnvironment's `config`, a schedule's `environment`). */
export function presentEnvironmentConfig(env: Environment): EnvironmentItem['config'] {
  return {
    name: env.name,
    description: env.description,
    ...(env.config.dockerImage !== undefined ? { docker_image: env.config.dockerImage } : {}),
    ...(env.config.agentUser !== undefined ? { agent_user: env.config.agentUser } : {}),
    github_repos: githubReposOf(env.config.repos),
    setup_commands: env.config.setupCommands,
    // Rows stored before maintenance commands existed have none.
    maintenance_commands: env.config.maintenanceCommands ?? [],
    repos: env.config.repos,
    env: env.config.env,
    network: env.config.network,
    allow_domains: env.config.allowDomains ?? [],
    allow_presets: env.config.allowPresets ?? [],
    allow_internal_ranges: env.config.allowInternalRanges ?? [],
    secrets: env.config.secrets,
    limits: presentLimits(env.config.limits),
    ...(env.config.workerHost !== undefined ? { worker_host: env.config.workerHost } : {}),
  };
}

/** Ours: the latest snapshot a worker reported for the environment (docs/environments.md "Snapshots"). */
export function presentSnapshot(snapshot: EnvironmentSnapshot | null): EnvironmentSnapshotItem | null {
  if (!snapshot) return null;
  return {
    key: snapshot.key,
    size_bytes: snapshot.bytes,
    created_at: toRfc3339(snapshot.createdAt),
    hits: snapshot.hits,
    last_used_at: toRfc3339(snapshot.lastUsedAt),
  };
}

/** The spec's CloudEnvironment: our configuration fields live inside `config`; our `snapshot` (state, not configuration) beside it. */
export function presentEnvironment(env: Environment, snapshot: EnvironmentSnapshot | null): EnvironmentItem {
  return {
    uid: env.id,
    config: presentEnvironmentConfig(env),
    last_updated: toRfc3339(env.updatedAt),
    setup_failed: env.setupFailed,
    scope: env.scope.type === 'team' ? { type: 'Team', uid: env.teamId } : { type: 'User', uid: env.scope.userId },
    ...(env.creatorId ? { creator: { type: 'user', uid: env.creatorId } } : {}),
    snapshot: presentSnapshot(snapshot),
  };
}
