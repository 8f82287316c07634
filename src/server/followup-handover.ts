import type { Environment } from '../core/environment.js';
import type { Run } from '../core/run.js';
import type { ClaimedRun, RepoCheckout } from '../core/worker-protocol.js';
import { settingDefault } from '../core/config.js';
import type { ServerDeps } from './deps.js';
import { isCommitId } from './repo-branches.js';

/** The follow-up settings of the deployment (an empty configuration's where the composition root gave none). */
export function followupSettings(deps: ServerDeps): { idleTimeoutMinutes: number; workspaceMaxBytes: number; workspaceRetentionMs: number } {
  return (
    deps.followups ?? {
      idleTimeoutMinutes: settingDefault('idleTimeoutMinutes'),
      workspaceMaxBytes: settingDefault('workspaceSnapshotMaxMb') * 1024 * 1024,
      workspaceRetentionMs: settingDefault('workspaceSnapshotRetentionDays') * 24 * 3600_000,
    }
  );
}

/**
 * Where each repository's checkout starts (docs/design.md "Follow-ups and
 * executions"): in a later execution, on the branch the run already pushed
 * (its commits are there, and its pull request follows it); else on the
 * branch or commit the run asked for (`config.branches`); else null, the
 * environment's branch.
 */
export function repoCheckouts(run: Run, env: Environment | null, pushed: ReadonlyMap<string, string>): (RepoCheckout | null)[] | undefined {
  const repos = env?.config.repos ?? [];
  const asked = run.config.branches ?? {};
  const checkouts = repos.map((repo): RepoCheckout | null => {
    const ref = asked[repo.url];
    // A branch the run starts from takes its changes, unless it is the environment's own branch: the
    // run then publishes to a branch of its own and a pull request into that one, as any run does
    // (the worker also keeps the repository's default branch out of reach).
    const own = ref !== undefined && !isCommitId(ref) && ref !== repo.branch ? ref : undefined;
    const branch = pushed.get(repo.url);
    if (branch !== undefined) return { branch, ...(branch === own ? { push: true } : {}) };
    if (ref === undefined) return null;
    return isCommitId(ref) ? { commit: ref } : { branch: ref, ...(own !== undefined ? { push: true } : {}) };
  });
  return checkouts.some((c) => c !== null) ? checkouts : undefined;
}

/** The claim's follow-up fields: the execution, what the agent has not been given, where to start, what to restore, and how long to idle. */
export async function followupHandover(deps: ServerDeps, run: Run, env: Environment | null): Promise<Partial<ClaimedRun>> {
  const settings = followupSettings(deps);
  const [followups, artifacts, workspace, diffs] = await Promise.all([
    deps.store.followups.list(run.id, run.followupsThrough),
    run.execution > 1 ? deps.store.listRunArtifacts([run.id]) : Promise.resolve([]),
    run.execution > 1 && run.config.snapshot !== false ? deps.store.followups.workspaceSnapshot(run.id) : Promise.resolve(null),
    run.execution > 1 ? deps.store.followups.diffs(run.id) : Promise.resolve([]),
  ]);
  const pushed = new Map<string, string>();
  for (const artifact of artifacts) {
    const { branch, repository } = artifact.data;
    if (artifact.type === 'BRANCH' && typeof branch === 'string' && typeof repository === 'string') pushed.set(repository, branch);
  }
  const checkouts = repoCheckouts(run, env, pushed);
  // The run's patch stays one patch across executions: from where its first one started.
  const diffBase = new Map(diffs.map((d) => [d.repository, d.base]));
  const diffBases = (env?.config.repos ?? []).map((repo) => diffBase.get(repo.url) ?? null);
  const idleMinutes = run.config.idleTimeoutMinutes ?? settings.idleTimeoutMinutes;
  return {
    execution: run.execution,
    followups: followups.map((f) => ({ seq: f.seq, message: f.message })),
    followups_after: run.followupsThrough,
    ...(checkouts ? { checkouts } : {}),
    ...(diffBases.some((b) => b !== null) ? { diff_bases: diffBases } : {}),
    // Only the last execution's: an older one (the last kept none) would undo what came after it.
    ...(workspace && workspace.execution === run.execution - 1 ? { workspace: { execution: workspace.execution, bytes: workspace.bytes, heads: workspace.heads } } : {}),
    keep_workspace: run.config.snapshot !== false,
    workspace_max_bytes: settings.workspaceMaxBytes,
    idle_timeout_ms: idleMinutes * 60_000,
    // The hold is the claimer's and still stands (a cancel of the ended run ends it).
    resume_idle: run.idleWorkerId !== null && run.idleWorkerId === run.workerId && (run.idleUntil ?? 0) > deps.clock.now(),
  };
}
