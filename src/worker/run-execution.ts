import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ModelProviderSettings } from '../core/config.js';
import { retry } from '../core/retry.js';
import { RunFailure } from '../core/run-failure.js';
import type { RunStatusMessage, RunUsage } from '../core/run.js';
import type { ClaimedRun } from '../core/worker-protocol.js';
import type { AgentBudgets, Harness, HarnessResult } from '../agent/harness.js';
import type { LimitKind, Sandbox, SandboxBackend, SandboxLimits, SandboxSpec } from '../sandbox/sandbox-backend.js';
import { Redactor } from '../secrets/redactor.js';
import { SUPPORT_SOCKET_ENV, SUPPORT_TOKEN_ENV } from '../in-sandbox/harness-support-client.js';
import { EventUploader } from './event-uploader.js';
import { LeaseKeeper } from './lease-keeper.js';
import { boundedStatus, decideOutcome, harnessOutcome, type Outcome, type StopReason } from './outcome.js';
import { OutputBudget, OutputCollector } from './output-collector.js';
import { ProtocolError, type ProtocolClient } from './protocol-client.js';
import { FetchError, type MirrorCache } from './provisioning/mirror-cache.js';
import { checkoutDirs, setUpWorkspace } from './provisioning/workspace-setup.js';
import { mirrorBranchHead } from './provisioning/mirror-refs.js';
import { PublishError, type Publisher } from './results/publisher.js';
import { collectDiffs } from './results/run-diff.js';
import { RunSockets } from './run-sockets.js';
import type { ReportedFinish, ReportedShutdown } from './support-server.js';
import { RemoteRefusedError, type RemotePolicy } from './provisioning/remote-policy.js';
import type { EnsuredImage, ImageProvider } from './images/image-store.js';
import { ImageError, ImagePullCancelledError } from './images/image-errors.js';
import { imageAgentUser, imageEnv } from './images/image-user.js';
import { parseImageReference, type ImageReference } from '../core/image-reference.js';
import type { FoundSnapshot, SnapshotStore } from './snapshots/snapshot-store.js';
import { snapshotKey } from './snapshots/snapshot-key.js';
import { restoredMessage, savedMessage, snapshotInputs, snapshotRecord } from './snapshots/warm-start.js';
import { FollowupInbox, startingPrompt } from './followup-inbox.js';
import { restoreWorkspace, saveWorkspace, workspaceHeads } from './snapshots/workspace-snapshot.js';
import { destroyIdle, type IdleSandbox, type IdleSandboxes } from './idle-sandboxes.js';
import { spareKey, type SpareSandboxes, type SpareShape, type TakenSpare } from './spare-sandboxes.js';
import type { RepoSpec } from '../core/environment.js';
import type { NetworkAudit } from '../core/network-audit.js';
import { claimedNetwork, networkKey, RunNetwork } from './egress/run-network.js';

export interface ExecutionDeps {
  client: ProtocolClient;
  backend: SandboxBackend;
  harnesses: ReadonlyMap<string, Harness>;
  logger: Logger;
  /** SIGTERM → SIGKILL grace when stopping a run. */
  killGraceMs: number;
  maxOutputBytes: number;
  /** The environment every run starts from (PATH and friends), never the worker's own. */
  baseEnv: Record<string, string>;
  mirrors: MirrorCache;
  /** Where environments' images are pulled and unpacked; null where the backend cannot start a sandbox on one. */
  images: ImageProvider | null;
  /** Warm starts' saved states; null where the backend cannot start a sandbox on one. */
  snapshots: SnapshotStore | null;
  publisher: Publisher;
  /** Where runs' harness-support sockets are made (a directory each). */
  supportRoot: string;
  /** Executables the worker provides to every sandbox (agent CLIs, the model bridge). */
  tools: readonly { name: string; path: string }[];
  /** The worker's model providers: what the model proxy of agent CLIs forwards to. */
  providers: ModelProviderSettings;
  /** Which destinations a user-given URL the worker itself calls may have (a harness key's base URL): public addresses, or the operator's allowed hosts. */
  destinations: RemotePolicy;
  /** Which registries an environment's image may be pulled from: public addresses, or the operator's allowed hosts. */
  registries: RemotePolicy;
  /** Limits where the run's environment sets none. */
  sandboxDefaults: SandboxLimits & { outputBytes: number };
  /** Agent budgets where the run sets none. */
  agentBudgets: AgentBudgets;
  /** Where ended executions' sandboxes wait for a follow-up (the worker's); absent: each is torn down at once. */
  idle?: IdleSandboxes;
  /** Sandboxes the worker started ahead of claims (the worker's); absent: every run starts its own. */
  spares?: SpareSandboxes;
}

type RunLimits = SandboxLimits & { outputBytes: number };
interface CheckoutPlan {
  repos: RepoSpec[];
  commits: (string | null)[];
  /** Per repository, the branch its changes are pushed to instead of the run's own; null: the run's own. */
  targets: (string | null)[];
}
type ClaimedSecrets = Exclude<ClaimedRun['secrets'], { error: unknown }>;

/**
 * One claimed run, start to finish, as a sequence of phases:
 *
 *   preflight → repositories fetched (host mirrors) → sockets → sandbox up →
 *   provisioning (clone, setup commands; restart if setup-only secrets) →
 *   start (INPROGRESS) → harness → publish → teardown → finish
 *
 * Beside it, a {@link LeaseKeeper} renews the lease, listens for cancels and
 * fences the run off when the lease cannot be kept; runtime and limits stop
 * it. A phase that fails throws (a {@link RunFailure} where it knows how the
 * run should end); `decideOutcome` (src/worker/outcome.ts) maps the stop
 * reason, the error or the result to the run's end in one place.
 */
export class RunExecution {
  private sandbox: Sandbox | null = null;
  private sockets: RunSockets | null = null;
  private stopReason: StopReason | null = null;
  /** Aborted when the run is stopped: kills a repository fetch or a harness in progress. */
  private readonly stopped = new AbortController();
  private killTimer: NodeJS.Timeout | null = null;
  private readonly redactor: Redactor;
  private readonly uploader: EventUploader;
  private readonly lease: LeaseKeeper;
  private readonly limits: RunLimits;
  private readonly budget: OutputBudget;
  private readonly token = randomBytes(24).toString('hex');
  private readonly network: RunNetwork;
  /** What the agent said with `oz harness-support finish-task`, if it did. */
  private reportedFinish: ReportedFinish | null = null;
  private reportedShutdown: ReportedShutdown | null = null;
  private usage: RunUsage | null = null;
  /** The environment's image, once pulled (null: the run is on the host's system). */
  private image: EnsuredImage | null = null;
  /** The snapshot key of this run's setup, when it may start warm or leave a snapshot; null: neither. */
  private snapshotKey: string | null = null;
  /** The snapshot this run started from. */
  private restored: FoundSnapshot | null = null;
  private phasesOver = false;
  /** Where each repository's checkout starts and where its changes go, once checked against the mirrors. */
  private plan: CheckoutPlan | null = null;
  /** The follow-ups the agent starts with (the claim's). */
  private startFollowups: string[] = [];
  /** Follow-ups for the agent: the claim's, and those the control poll brings while it works. */
  private readonly inbox: FollowupInbox;
  readonly finished: Promise<void>;

  /** The mirrors and each checkout's base commit, once provisioned: what an idle sandbox keeps for the next execution. */
  private mounts: string[] = [];
  private bases: string[] = [];
  /** What the run's sandbox was started with (but for the run's own parts): the shape of the spare made for the next run. */
  private shape: SpareShape | null = null;

  constructor(
    private readonly run: ClaimedRun,
    private readonly deps: ExecutionDeps,
    /** When the claim request was sent (monotonic ms): the lease is counted from then. */
    claimedAt: number = performance.now(),
    /** The sandbox the run's last execution left idle on this worker: this one goes on in it, with nothing to restore. */
    private readonly adopted: IdleSandbox | null = null,
  ) {
    const secrets = this.secrets;
    this.redactor = new Redactor(
      secrets
        ? [
            ...Object.values(secrets.env),
            ...Object.values(secrets.setup_env),
            ...(secrets.harness_auth ? [secrets.harness_auth] : []),
            ...(secrets.registry_auth ? [secrets.registry_auth.password] : []),
          ]
        : [],
    );
    this.uploader = new EventUploader(
      deps.client,
      run.run_id,
      run.lease_token,
      { onStale: () => this.stop({ kind: 'fenced' }), onFailure: (error) => this.stop({ kind: 'upload', error }) },
      this.redactor,
    );
    this.network = new RunNetwork(claimedNetwork(run), (event) => this.uploader.add(event), deps.logger, deps.backend.isolates);
    this.inbox = new FollowupInbox(run.followups_after ?? 0, (through) => {
      deps.client
        .followupsDelivered(run.run_id, run.lease_token, through)
        .catch((error: unknown) => deps.logger.warn({ err: error, runId: run.run_id }, 'could not report the follow-ups given'));
    });
    const claimedFollowups = run.followups ?? [];
    const lastClaimed = claimedFollowups[claimedFollowups.length - 1]?.seq;
    this.lease = new LeaseKeeper(
      deps.client,
      run.run_id,
      run.lease_token,
      {
        leaseTtlMs: run.lease_ttl_ms,
        claimedAt,
        ...(run.lease_valid_for_ms !== undefined ? { validAtClaimMs: run.lease_valid_for_ms } : {}),
        // An older server sends no follow-ups: the control poll then waits for cancels only.
        ...(run.followups !== undefined ? { followupsAfter: lastClaimed ?? run.followups_after ?? 0 } : {}),
      },
      {
        onFollowups: (followups) => this.inbox.push(followups),
        onCancel: () => this.cancel({ message: 'Cancelled by request.', reason: 'cancelled_by_user' }),
        onFenced: () => this.stop({ kind: 'fenced' }),
        // The sandbox's own dead-man's switch: it ends itself when the lease
        // lapses, whether or not this process is scheduled then.
        onRenewed: (validForMs) => this.sandbox?.renewFence(Math.max(0, Math.floor(validForMs))),
      },
      deps.logger,
    );
    this.limits = this.runLimits();
    const limits = this.limits;
    this.budget = new OutputBudget(Math.min(deps.maxOutputBytes, limits.outputBytes), limits.outputBytes, () =>
      this.stop({ kind: 'limit', limit: 'output', value: limits.outputBytes }),
    );
    this.finished = this.execute().catch((error: unknown) => {
      deps.logger.error({ err: error, runId: run.run_id }, 'run execution failed');
    });
  }

  get runId(): string {
    return this.run.run_id;
  }

  /** Stop the run (cancel request, drain, limits, fencing): SIGTERM now, SIGKILL after the grace period. */
  stop(reason: StopReason): void {
    // Fencing overrides an earlier reason (the lease is gone: kill now, write nothing).
    if (this.stopReason && !(reason.kind === 'fenced' && this.stopReason.kind !== 'fenced')) return;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.stopReason = reason;
    this.stopped.abort();
    this.sandbox?.signal('SIGTERM');
    this.killTimer = setTimeout(() => this.sandbox?.signal('SIGKILL'), reason.kind === 'fenced' ? 0 : this.deps.killGraceMs);
  }

  cancel(message: RunStatusMessage): void {
    // A cancel that arrives once the work is over (teardown, publishing done) changes nothing.
    if (this.phasesOver) return;
    this.stop({ kind: 'cancel', message });
  }

  private get secrets(): ClaimedSecrets | null {
    return 'error' in this.run.secrets ? null : this.run.secrets;
  }

  /**
   * The run's limits: as the server resolved them (the environment's, else
   * the deployment's defaults, capped by the operator's and the team's
   * ceilings); from a server that sends none, the environment's, else this
   * worker's defaults.
   */
  private runLimits(): RunLimits {
    const fallback = this.deps.sandboxDefaults;
    const own = this.run.limits ?? this.run.environment?.limits ?? {};
    const cpus = own.cpus ?? fallback.cpus;
    return {
      pids: own.pids ?? fallback.pids,
      memoryBytes: own.memoryBytes ?? fallback.memoryBytes,
      diskBytes: own.diskBytes ?? fallback.diskBytes,
      outputBytes: own.outputBytes ?? fallback.outputBytes,
      ...(cpus !== undefined ? { cpus } : {}),
    };
  }

  private notice(message: string, reason: string): void {
    this.uploader.add({ type: 'notice', at: Date.now(), data: { level: 'warn', message, reason } });
  }

  private async execute(): Promise<void> {
    const run = this.run;
    this.lease.start();
    const runtimeTimer = run.max_runtime_ms ? setTimeout(() => this.stop({ kind: 'runtime', limitMs: run.max_runtime_ms ?? 0 }), run.max_runtime_ms) : null;
    let result: Outcome | null = null;
    let error: unknown = null;
    try {
      result = await this.phases();
    } catch (thrown) {
      error = thrown;
    } finally {
      if (runtimeTimer) clearTimeout(runtimeTimer);
      this.phasesOver = true;
    }
    try {
      const hit = await this.limitHit();
      const outcome = decideOutcome(this.stopReason, error, result);
      // Kept for a follow-up (idle) before the finish: the next execution's claim, right after it, finds it.
      // What its network did, while the sandbox is there to ask.
      const collected = await this.network.collect(this.sandbox).catch(() => undefined);
      // A secret the run put in a host name is not kept with the run either.
      const audit = collected ? this.redactor.redactDeep(collected) : undefined;
      const idle = hit === null ? await this.keepIdle(outcome) : null;
      await this.teardown(idle !== null);
      if (outcome?.message?.reason === 'worker_error') this.deps.logger.error({ err: error, runId: run.run_id }, 'run failed on the platform side');
      // The keeper goes first: its control long-poll would read the finish's
      // own 409 as a lost lease. The lease has at least its margin left.
      await this.lease.stop();
      const finished = outcome ? await this.finish(outcome, idle?.forMs ?? 0, audit) : false;
      if (idle && !finished && this.deps.idle?.take(run.run_id)) await destroyIdle(idle.sandbox, this.deps.logger);
    } finally {
      this.uploader.stop();
      await this.lease.stop();
    }
  }

  /** The phases; null when the run was stopped on the way (the stop reason decides then). */
  private async phases(): Promise<Outcome | null> {
    const run = this.run;
    if (run.cancel_requested) this.cancel({ message: 'Cancelled before it started.', reason: 'cancelled_by_user' });
    // An adopted sandbox is this execution's from the start: whatever fails next, the teardown ends it.
    if (this.adopted) this.adopt(this.adopted);
    const harness = this.preflight();
    if (this.adopted) return this.resume(harness, this.adopted);
    // Mirrors this worker has already: the sandbox starts on them while the fetch brings them up to date.
    const known = this.knownMirrors();
    const fetching = this.fetchRepositories();
    fetching.catch(() => {}); // awaited below; a sandbox that fails to start first is the run's error
    const mounts = known ?? (await fetching);
    this.image = await this.pullImage();
    this.findSnapshot();
    // A worker that was frozen (or slow) past its lease starts nothing more.
    if (this.lease.validForMs <= 0) this.stop({ kind: 'fenced' });
    if (this.stopReason) return null;
    this.shape = this.sandboxShape(mounts);
    const spare = (await this.deps.spares?.take(spareKey(run.team_id, this.shape))) ?? null;
    // The run holds its own image and snapshot (pullImage, findSnapshot): what the spare held is let go.
    spare?.release();
    this.sockets = await this.startSockets(harness, spare?.supportDir);
    await this.network.start(this.sockets.dir);
    this.sandbox = await this.startSandbox(this.shape, spare);
    await this.network.watchSandbox(this.sandbox, false);
    await fetching;
    if (this.stopReason) return null;
    const env = { ...this.runEnv(), ...secretEnv(this.secrets?.env ?? {}) };
    const bases = await this.provision(env, mounts);
    this.mounts = mounts;
    this.bases = bases;
    if (this.stopReason) return null;
    await this.uploader.flush(); // setup's events come before the state change
    await this.markStarted();
    this.prepareSpare();
    const final = await this.runHarness(harness, env);
    if (this.stopReason) return null;
    const outcome = harnessOutcome(final);
    const ended = outcome.state !== 'SUCCEEDED' || (run.environment?.repos ?? []).length === 0 ? outcome : await this.publish(env, bases, mounts, final.summary);
    if (!this.stopReason) await this.keepWorkspace(env, bases);
    return ended;
  }

  /**
   * The run's next execution in the sandbox its last one left idle: the
   * workspace is as the agent left it (nothing cloned, set up or restored);
   * the sockets serve again, in the same directory, with this execution's token.
   */
  private adopt(idle: IdleSandbox): void {
    this.sandbox = idle.sandbox;
    this.sockets = idle.sockets;
    this.image = idle.image;
    this.mounts = idle.mounts;
    this.bases = idle.bases;
  }

  private async resume(harness: Harness, idle: IdleSandbox): Promise<Outcome | null> {
    const run = this.run;
    // Nothing is cloned on a resume: the workspace already holds the run's branch, whatever the mirror says.
    await this.planCheckouts(idle.mounts, { cloning: false });
    this.sockets = await this.startSockets(harness, idle.sockets.dir);
    await this.network.start(this.sockets.dir);
    await this.network.watchSandbox(idle.sandbox, true);
    idle.sandbox.renewFence(Math.max(0, Math.floor(this.lease.validForMs)));
    if (this.stopReason) return null;
    const env = { ...this.runEnv(), ...secretEnv(this.secrets?.env ?? {}) };
    await idle.sandbox.enter('agent');
    this.uploader.add({
      type: 'notice',
      at: Date.now(),
      data: { level: 'info', message: 'Resumed in the sandbox the last execution left: the workspace is as it was, nothing restored.', reason: 'idle_sandbox_resumed' },
    });
    await this.uploader.flush();
    await this.markStarted();
    const final = await this.runHarness(harness, env);
    if (this.stopReason) return null;
    const outcome = harnessOutcome(final);
    const ended = outcome.state !== 'SUCCEEDED' || (run.environment?.repos ?? []).length === 0 ? outcome : await this.publish(env, this.bases, this.mounts, final.summary);
    if (!this.stopReason) await this.keepWorkspace(env, this.bases);
    return ended;
  }

  /**
   * Keep the sandbox for a follow-up (`idle_timeout_ms`), if the execution
   * ended on its own (succeeded or failed; not cancelled, fenced or over a
   * limit) and the worker keeps idle sandboxes; null: tear it down.
   */
  private async keepIdle(outcome: Outcome | null): Promise<{ forMs: number; sandbox: IdleSandbox } | null> {
    const forMs = this.run.idle_timeout_ms ?? 0;
    const pool = this.deps.idle;
    if (!pool || forMs <= 0 || !outcome || this.stopReason || !this.sandbox || !this.sockets) return null;
    if (outcome.state !== 'SUCCEEDED' && outcome.state !== 'FAILED') return null;
    // Nothing of the execution runs on while it waits (a server the agent left, with the run's secrets): its init only,
    // or where the backend cannot keep that alone, a fresh one.
    try {
      await (this.sandbox.quiet ? this.sandbox.quiet() : this.sandbox.restart());
    } catch (error) {
      this.deps.logger.warn({ err: error, runId: this.run.run_id }, 'could not quiet the sandbox; not keeping it');
      return null;
    }
    await this.sockets.stopServers();
    const image = this.image;
    const restored = this.restored ? this.snapshotKey : null;
    const idle: IdleSandbox = {
      runId: this.run.run_id,
      leaseToken: this.run.lease_token,
      sandbox: this.sandbox,
      sockets: this.sockets,
      image,
      mounts: this.mounts,
      bases: this.bases,
      network: this.adopted?.network ?? networkKey(claimedNetwork(this.run)),
      // What the sandbox holds of the caches, taken over from the execution that made it.
      release:
        this.adopted?.release ??
        (() => {
          if (image) this.deps.images?.release(image.digest);
          if (restored) this.deps.snapshots?.release(restored);
        }),
    };
    if (!pool.keep(idle, forMs)) return null;
    return { forMs, sandbox: idle };
  }

  /** The environment's repositories, each on the branch this execution starts from (`checkouts`), the commits asked for, and where each one's changes go. */
  private checkoutRepos(): CheckoutPlan {
    if (this.plan) return this.plan;
    const repos = this.run.environment?.repos ?? [];
    const checkouts = this.run.checkouts ?? [];
    return {
      repos: repos.map((repo, i) => {
        const branch = checkouts[i]?.branch;
        return branch !== undefined ? { ...repo, branch } : repo;
      }),
      commits: repos.map((_repo, i) => checkouts[i]?.commit ?? null),
      targets: repos.map((_repo, i) => (checkouts[i]?.push ? (checkouts[i]?.branch ?? null) : null)),
    };
  }

  /**
   * The checkouts, checked against the worker's mirrors (host-side git on its own bare
   * repositories): the run's own branch that is not there (its push failed) gives way to
   * the environment's branch; a branch that is the repository's default one never takes
   * the run's changes directly (they go to the run's own branch, and a pull request into it).
   */
  private async planCheckouts(mounts: readonly string[], { cloning = true }: { cloning?: boolean } = {}): Promise<void> {
    const plan = this.checkoutRepos();
    const environmentRepos = this.run.environment?.repos ?? [];
    const git = this.deps.mirrors.git;
    const signal = this.stopped.signal;
    for (const [i, checkout] of (this.run.checkouts ?? []).entries()) {
      const mirror = mounts[i];
      const repo = environmentRepos[i];
      if (!checkout?.branch || !mirror || !repo) continue;
      const branch = checkout.branch;
      if (!checkout.push) {
        if (!cloning) continue;
        const there = await git.run(['--git-dir', mirror, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], { signal }).then(
          (out) => out.trim() !== '',
          () => false,
        );
        if (!there) {
          plan.repos[i] = repo;
          this.notice(
            `The run's branch ${branch} is not in ${repo.url} (its push did not happen): this execution starts from ${repo.branch ?? 'its default branch'}.`,
            'run_branch_missing',
          );
        }
        continue;
      }
      const head = await git.run(['--git-dir', mirror, 'symbolic-ref', '--quiet', '--short', 'HEAD'], { signal }).then(
        (out) => out.trim(),
        () => '',
      );
      if (head === branch) {
        plan.targets[i] = null;
        this.notice(
          `${branch} is the default branch of ${repo.url}: the run starts from it and its changes go to a branch of its own, with a pull request into ${branch}.`,
          'default_branch_protected',
        );
      }
    }
    this.plan = plan;
  }

  /**
   * What this execution leaves for a follow-up's (docs/design.md "Follow-ups and
   * executions"): the workspace's changes, through the server so any worker can
   * restore them; too large or failed is a notice, never the run's failure.
   */
  private async keepWorkspace(env: Record<string, string>, bases: readonly string[]): Promise<void> {
    const run = this.run;
    if (run.keep_workspace !== true || !run.workspace_max_bytes) return;
    const sandbox = this.sandbox as Sandbox;
    const dirs = checkoutDirs(run.environment?.repos ?? []);
    try {
      await sandbox.enter('platform');
      const saved = await saveWorkspace(
        sandbox,
        { ...this.platformEnv(env), GIT_TERMINAL_PROMPT: '0' },
        dirs.map((dir, i) => ({ dir, base: bases[i] ?? 'HEAD' })),
        run.workspace_max_bytes,
      );
      if ('tooLarge' in saved) {
        const mib = (n: number): string => `${Math.ceil(n / 1024 / 1024)} MiB`;
        this.notice(
          `No workspace snapshot kept: the workspace's changes are ${mib(saved.tooLarge)}, more than the ${mib(run.workspace_max_bytes)} this server keeps (OZ_WORKSPACE_SNAPSHOT_MAX_MB); a follow-up starts from the run's branch.`,
          'workspace_snapshot_too_large',
        );
        return;
      }
      if ('failed' in saved) {
        this.deps.logger.warn({ runId: run.run_id, detail: saved.failed }, 'could not save the workspace');
        this.notice(`No workspace snapshot kept: ${this.redactor.redact(saved.failed)}`, 'workspace_snapshot_failed');
        return;
      }
      const heads = await workspaceHeads(sandbox, { ...this.platformEnv(env), GIT_TERMINAL_PROMPT: '0' }, dirs);
      if (heads.some((h) => h === null)) {
        this.notice('No workspace snapshot kept: a repository of the workspace has no commit checked out any more.', 'workspace_snapshot_failed');
        return;
      }
      // Quietly: every execution leaves one; the one that restores it says so.
      await this.deps.client.putWorkspace(run.run_id, run.lease_token, saved.tar, heads as string[]);
      this.deps.logger.debug({ runId: run.run_id, bytes: saved.tar.length }, 'workspace snapshot kept');
    } catch (error) {
      this.deps.logger.warn({ err: error, runId: run.run_id }, 'could not keep the workspace');
      const refused = error instanceof ProtocolError && error.status === 413;
      this.notice(
        refused ? 'No workspace snapshot kept: the server refused it as too large.' : 'No workspace snapshot kept: it could not be sent to the server (the worker log has why).',
        'workspace_snapshot_failed',
      );
    }
  }

  /** The last execution's workspace over the fresh checkouts (a follow-up's), if the server has one. */
  private async restoreWorkspace(env: Record<string, string>, dirs: readonly string[], heads: readonly string[]): Promise<void> {
    const run = this.run;
    if (!run.workspace) return;
    // Its files are whole files on top of those commits: over a branch that moved since (someone pushed), they would undo that.
    const moved = dirs.filter((_dir, i) => run.workspace?.heads[i] !== undefined && run.workspace.heads[i] !== heads[i]);
    if (moved.length > 0) {
      this.notice(
        `The last execution's workspace is not restored: ${moved.join(', ')} moved since it was kept (a new commit on the branch). This execution starts from the branch as it is.`,
        'workspace_snapshot_stale',
      );
      return;
    }
    let tar: Buffer;
    try {
      tar = await this.deps.client.getWorkspace(run.run_id, run.lease_token, this.stopped.signal);
    } catch (error) {
      if (this.stopReason) return;
      this.deps.logger.warn({ err: error, runId: run.run_id }, 'could not fetch the workspace snapshot');
      this.notice("The last execution's workspace snapshot could not be fetched: this execution starts from the run's branch.", 'workspace_snapshot_unavailable');
      return;
    }
    try {
      await restoreWorkspace(this.sandbox as Sandbox, { ...this.platformEnv(env), GIT_TERMINAL_PROMPT: '0' }, tar);
    } catch (error) {
      throw RunFailure.setup(`Could not restore the last execution's workspace: ${this.redactor.redact((error as Error).message)}`, 'workspace_restore_failed');
    }
    this.uploader.add({
      type: 'notice',
      at: Date.now(),
      data: {
        level: 'info',
        message: `Restored the workspace execution ${run.workspace.execution} left (${tar.length} bytes).`,
        reason: 'workspace_snapshot_restored',
        bytes: tar.length,
      },
    });
  }

  /** What can be known before anything starts: the harness, the run's secrets. */
  private preflight(): Harness {
    const run = this.run;
    const harness = this.deps.harnesses.get(run.harness.type);
    if (!harness) {
      throw new RunFailure({
        state: 'FAILED',
        code: 'feature_not_available',
        reason: `harness_${run.harness.type}`,
        message: `The ${run.harness.type} harness is not available on this worker yet.`,
      });
    }
    if ('error' in run.secrets) {
      throw new RunFailure({ state: 'FAILED', code: 'invalid_request', reason: run.secrets.error.reason, message: run.secrets.error.message, retryable: false });
    }
    const unknown = this.secrets?.unknown ?? [];
    if (unknown.length > 0) {
      this.notice(`Secrets not found (neither the team's nor the run creator's): ${unknown.join(', ')}. The run goes on without them.`, 'secrets_not_found');
    }
    return harness;
  }

  /** Where each repository's mirror is, if this worker has every one already; else null (the first fetch makes them). */
  private knownMirrors(): string[] | null {
    const paths = (this.run.environment?.repos ?? []).map((repo) => this.deps.mirrors.existing(this.run.team_id, repo.url));
    return paths.every((path) => path !== null) ? paths : null;
  }

  /** Each repository into this worker's mirror of it (host side, the team's own); returns the mirrors. */
  private async fetchRepositories(): Promise<string[]> {
    const mounts: string[] = [];
    for (const repo of this.run.environment?.repos ?? []) {
      try {
        const auth = this.deps.publisher.fetchAuth(repo.url, this.secrets?.env.GITHUB_TOKEN);
        mounts.push(await this.deps.mirrors.ensure(this.run.team_id, repo.url, this.stopped.signal, auth));
      } catch (error) {
        if (this.stopReason) return mounts;
        if (!(error instanceof FetchError)) throw error;
        throw new RunFailure({
          state: 'FAILED',
          code: 'environment_setup_failed',
          reason: 'repository_fetch_failed',
          message: `Could not fetch a repository: ${error.message}`,
          retryable: false,
          cause: error,
        });
      }
    }
    return mounts;
  }

  /** A harness key's own base URL, resolved and checked now (the proxy connects only to these addresses); refused: the run fails naming it. */
  private async harnessBase(): Promise<{ url: string; addresses: readonly string[] } | undefined> {
    const url = this.secrets?.harness_auth_base_url;
    if (url === undefined) return undefined;
    try {
      return { url, addresses: (await this.deps.destinations.check(url)).addresses };
    } catch (error) {
      if (!(error instanceof RemoteRefusedError)) throw error;
      throw new RunFailure({ state: 'FAILED', code: 'invalid_request', reason: 'harness_base_url_refused', message: `The harness key's base URL is refused: ${error.message}` });
    }
  }

  private async startSockets(harness: Harness, dir?: string): Promise<RunSockets> {
    const uploader = this.uploader;
    const secrets = this.secrets;
    const harnessBase = harness.modelProxy ? await this.harnessBase() : undefined;
    return RunSockets.start(
      {
        runId: this.run.run_id,
        root: this.deps.supportRoot,
        token: this.token,
        handlers: {
          pullRequest: (url, branch) => uploader.add({ type: 'artifact', at: Date.now(), data: { artifact_type: 'PULL_REQUEST', data: { url, branch } } }),
          notify: (message) => uploader.add({ type: 'notice', at: Date.now(), data: { level: 'info', message, reason: 'agent_notification' } }),
          finish: (finish) => (this.reportedFinish = finish),
          reference: (reference) =>
            uploader.add({
              type: 'notice',
              at: Date.now(),
              data: { level: 'info', message: `${reference.type}: ${reference.title ? `${reference.title} ` : ''}${reference.url}`, reason: 'external_reference', reference },
            }),
          shutdown: (shutdown) => {
            this.reportedShutdown = shutdown;
            const error = shutdown.errorCategory !== undefined || shutdown.errorMessage !== undefined;
            uploader.add({
              type: 'notice',
              at: Date.now(),
              data: {
                level: error ? 'error' : 'info',
                message: error ? `the harness is shutting down with an error: ${shutdownMessage(shutdown)}` : 'the harness is shutting down',
                reason: 'harness_shutdown',
              },
            });
          },
        },
        modelProxy: harness.modelProxy,
        keys: { harnessAuth: secrets?.harness_auth, anthropic: secrets?.env.ANTHROPIC_API_KEY, openai: secrets?.env.OPENAI_API_KEY },
        harnessBase,
        providers: this.deps.providers,
        redact: (text) => this.redactor.redact(text),
      },
      dir,
    );
  }

  /** The environment's image, pulled into the worker's store (shared with concurrent runs), or null. */
  private async pullImage(): Promise<EnsuredImage | null> {
    const reference = this.run.environment?.dockerImage;
    const { backend, images } = this.deps;
    if (!reference || this.stopReason) return null;
    if (!images || !backend.runsImages) {
      this.notice(`docker_image "${reference}" is not applicable to the ${backend.name} backend: the run uses the worker host's system.`, 'docker_image_not_applicable');
      return null;
    }
    await this.checkRegistry(reference);
    const started = Date.now();
    try {
      const image = await images.ensure(reference, { signal: this.stopped.signal, auth: this.registryAuth(reference) });
      this.uploader.add({
        type: 'notice',
        at: Date.now(),
        data: { level: 'info', message: `Image ${reference} (${image.digest}) ready in ${Date.now() - started} ms.`, reason: 'image_ready' },
      });
      return image;
    } catch (error) {
      if (error instanceof ImagePullCancelledError && this.stopReason) return null;
      if (!(error instanceof ImageError)) throw error;
      this.deps.logger.warn({ runId: this.run.run_id, image: reference, detail: error.detail }, 'image pull failed');
      throw new RunFailure({
        state: 'FAILED',
        code: 'environment_setup_failed',
        reason: 'image_pull_failed',
        message: `Could not pull the image: ${error.message}`,
        retryable: error.code === 'unreachable',
        cause: error,
      });
    }
  }

  /** A snapshot of this run's setup, if the worker keeps them, the run allows it, and one exists. */
  private findSnapshot(): void {
    const { snapshots, backend } = this.deps;
    // The run's own choice (Oz's --no-snapshot): a cold start, and nothing kept.
    if (!snapshots || !backend.runsImages || this.run.snapshot === false || this.stopReason) return;
    // Setup snapshots: without setup commands there is nothing to keep (the clones come from the mirrors).
    if ((this.run.environment?.setupCommands ?? []).length === 0) return;
    // A commit to check out cannot be fetched into a snapshot's checkouts by name: such a run starts cold.
    if ((this.run.checkouts ?? []).some((c) => c?.commit !== undefined)) return;
    this.snapshotKey = snapshotKey(snapshotInputs(this.run, this.image?.digest ?? null, this.secrets, backend.name), snapshots.secretKey);
    this.restored = snapshots.find(this.run.team_id, this.snapshotKey);
  }

  /**
   * The image's registry must be a public address, or one the operator allows: the worker's own
   * host and its network are not a run's to probe. Decided before any connection; the refusal
   * names the setting. (skopeo resolves the name again itself: a name that changes its address
   * between the two is not caught here.)
   */
  private async checkRegistry(reference: string): Promise<void> {
    let parsed: ImageReference;
    try {
      parsed = parseImageReference(reference);
    } catch {
      return; // the store refuses it, naming what is wrong
    }
    const host = parsed.registry === 'docker.io' ? 'registry-1.docker.io' : parsed.registry;
    try {
      await this.deps.registries.check(`${parsed.plainHttp ? 'http' : 'https'}://${host}/`);
    } catch (error) {
      if (!(error instanceof RemoteRefusedError)) throw error;
      // One message whatever the address was (no map of the worker's network); the detail is the operator's, in the log.
      this.deps.logger.warn({ runId: this.run.run_id, image: reference, detail: error.detail }, 'image registry refused');
      throw new RunFailure({
        state: 'FAILED',
        code: 'environment_setup_failed',
        reason: 'image_pull_failed',
        message: `Could not pull the image "${reference}": its registry is not reachable or not allowed (one on a loopback, private or link-local address needs the operator's OZ_REGISTRY_ALLOWED_HOSTS).`,
      });
    }
  }

  /** The run's registry credentials, if they are for the image's registry (they go to no other). */
  private registryAuth(reference: string): { username: string; password: string } | undefined {
    const auth = this.secrets?.registry_auth;
    if (!auth) return undefined;
    let registry: string;
    try {
      registry = parseImageReference(reference).registry;
    } catch {
      return undefined;
    }
    if (registry === auth.registry) return { username: auth.username, password: auth.password };
    this.notice(
      `The run's registry-auth secret is for ${auth.registry}, not for ${registry}, the image's registry: the image is pulled without credentials.`,
      'registry_auth_other_registry',
    );
    return undefined;
  }

  /** The image half of the sandbox's spec: its root, whom the harness runs as, where it starts. */
  private sandboxImage(): Pick<SandboxSpec, 'image' | 'phase'> {
    const image = this.image;
    if (!image) return {};
    let user: { uid: number; gid: number };
    try {
      // The environment's own choice (a devcontainer's remoteUser) over the image's USER.
      user = imageAgentUser((file) => image.etcFile(file), this.run.environment?.agentUser ?? image.config.user);
    } catch (error) {
      throw new RunFailure({
        state: 'FAILED',
        code: 'environment_setup_failed',
        reason: 'image_config_invalid',
        message: `${this.run.environment?.agentUser !== undefined ? `The environment's agent_user "${this.run.environment.agentUser}" cannot be used on this image` : "The image's config cannot be used"}: ${(error as Error).message}`,
      });
    }
    // Cloning is the platform's (an image need not have git); without repositories setup comes first.
    return {
      image: { ...(image.engineImage ? { engineImage: image.engineImage } : image.rootDir ? { rootDir: image.rootDir } : {}), agentUid: user.uid, agentGid: user.gid },
      phase: (this.run.environment?.repos ?? []).length > 0 ? 'platform' : 'setup',
    };
  }

  /** What the run's sandbox starts with, but for the run's own parts (its id, fence, limit handler, sockets). */
  private sandboxShape(mounts: readonly string[], restored: FoundSnapshot | null = this.restored): SpareShape {
    return {
      ...this.sandboxImage(),
      ...(restored ? { restore: { workspace: restored.workspace, layer: this.image ? restored.layer : null } } : {}),
      network: this.network.policy,
      internalRanges: this.network.internalRanges,
      limits: this.limits,
      mounts: [...mounts],
      tools: this.deps.tools,
    };
  }

  private onLimit(kind: LimitKind): void {
    const limits = this.limits;
    this.stop({ kind: 'limit', limit: kind, value: kind === 'pids' ? limits.pids : kind === 'memory' ? limits.memoryBytes : limits.diskBytes });
  }

  /** The run's sandbox: the spare the worker started ahead in this shape, else one started now. */
  private async startSandbox(shape: SpareShape, spare: TakenSpare | null): Promise<Sandbox> {
    const { backend } = this.deps;
    let sandbox: Sandbox;
    const create = (restored: FoundSnapshot | null): Promise<Sandbox> =>
      backend.create({
        ...(restored === this.restored ? shape : this.sandboxShape(shape.mounts, restored)),
        runId: this.run.run_id,
        supportDir: this.sockets?.dir,
        // Until the next renewal: the sandbox ends itself before the lease could lapse.
        fenceAfterMs: Math.max(0, Math.floor(this.lease.validForMs)),
        onLimit: (kind) => this.onLimit(kind),
      });
    if (spare) {
      spare.onLimit((kind) => this.onLimit(kind));
      this.deps.logger.info({ runId: this.run.run_id }, 'started in a spare sandbox');
    }
    try {
      try {
        sandbox = spare ? spare.sandbox : await create(this.restored);
      } catch (error) {
        const restored = this.restored;
        if (!restored || !this.snapshotKey || error instanceof RunFailure) throw error;
        // A snapshot that cannot be mounted is not used again, and this run starts cold instead.
        this.deps.logger.warn({ err: error, runId: this.run.run_id }, 'could not start on the snapshot; starting cold');
        this.deps.snapshots?.remove(this.run.team_id, this.snapshotKey);
        this.deps.snapshots?.release(this.snapshotKey);
        this.restored = null;
        this.notice("The environment's snapshot could not be mounted: this run starts cold, and the snapshot is dropped.", 'snapshot_failed');
        this.shape = this.sandboxShape(shape.mounts, null);
        sandbox = await create(null);
      }
    } catch (error) {
      if (error instanceof RunFailure) throw error;
      throw RunFailure.sandboxStartFailed((error as Error).message, error);
    }
    // Renewals that came while it was starting had no sandbox to reach.
    sandbox.renewFence(Math.max(0, Math.floor(this.lease.validForMs)));
    if (!backend.isolates) {
      this.notice(`This run executes on the "${backend.name}" backend: no isolation; network policy and limits (memory, pids, disk) are not enforced.`, 'not_isolated');
    }
    return sandbox;
  }

  /**
   * Clone the repositories and run the setup commands in the sandbox (on a
   * warm start: move the snapshot's checkouts instead, and skip setup), then
   * the maintenance commands; returns each checkout's base commit.
   */
  private async provision(env: Record<string, string>, mounts: readonly string[]): Promise<string[]> {
    const sandbox = this.sandbox as Sandbox;
    const environment = this.run.environment;
    const setupOnly = this.secrets?.setup_env ?? {};
    const restored = this.restored;
    const setupCommands = environment?.setupCommands ?? [];
    const maintenance = environment?.maintenanceCommands ?? [];
    const output = new OutputCollector((e) => this.uploader.add(e), this.budget, this.redactor, 'setup');
    await this.planCheckouts(mounts);
    const checkout = this.checkoutRepos();
    const refresh = restored ? { snapshotBases: restored.meta.bases ?? [], mirrorHeads: await this.mirrorHeads(mounts) } : {};
    // On an image, setup runs as root; maintenance as the harness's user, in the launch the harness
    // then runs in, so what it starts (a service) is still up when the harness starts.
    const steps = (commands: readonly string[], checkouts: 'clone' | 'refresh' | 'none', firstIndex: number, phase: 'setup' | 'agent' = 'setup'): Promise<string[]> =>
      setUpWorkspace({
        sandbox,
        repos: checkout.repos,
        commits: checkout.commits,
        afterCheckouts: (dirs, heads) => this.restoreWorkspace(env, dirs, heads),
        setupCommands: commands,
        checkouts,
        firstIndex,
        ...refresh,
        env: { ...env, ...setupOnly },
        emit: (e) => this.uploader.add(e),
        output: (stream, chunk) => output.push(stream, chunk),
        stopped: () => this.stopReason !== null,
        redactor: this.redactor,
        imageWorkingDir: this.image?.config.workingDir ?? null,
        ...(this.image ? { cloneEnv: this.platformEnv({ ...env, ...setupOnly }), beforeSetup: () => this.enterSetup(phase) } : {}),
      });
    let bases: string[];
    try {
      // Warm: the snapshot is what setup left; the maintenance commands (below) bring it up to date.
      bases = await steps(restored ? [] : setupCommands, restored ? 'refresh' : 'clone', 0);
      // A snapshot is read with nothing of setup running: the jail is relaunched first.
      // Only a checkout on the environment's own branches is what the next run of it starts from.
      const onOwnBranches = (this.run.checkouts ?? []).every((c) => c === null);
      const saving = !restored && onOwnBranches && this.snapshotKey !== null && sandbox.stateDirs() !== null && !this.stopReason;
      if (saving) await sandbox.enter('agent', () => this.saveSnapshot(Object.values(setupOnly), bases));
      // Maintenance runs in every run, after setup's state is in place (copied or restored), so a
      // service it starts is up for the harness whether the run started cold or warm.
      if (maintenance.length > 0 && !this.stopReason) await steps(maintenance, 'none', setupCommands.length, 'agent');
    } catch (error) {
      // A snapshot that leads to a failed start is not used again (a stopped run says nothing about it).
      if (restored && this.snapshotKey && !this.stopReason) this.deps.snapshots?.remove(this.run.team_id, this.snapshotKey);
      throw error;
    } finally {
      output.end();
    }
    if (restored) {
      this.uploader.add({
        type: 'notice',
        at: Date.now(),
        data: { level: 'info', message: restoredMessage(restored.meta, maintenance.length, Date.now()), reason: 'snapshot_restored', snapshot: snapshotRecord(restored.meta) },
      });
    }
    // Setup-only secrets live in the environ of whatever setup left running
    // and in the memory of the init that started it: nothing of setup
    // survives into the harness then (docs/secrets.md). On an image the
    // harness's own launch (as the image's user) is that restart.
    if (!this.stopReason && !(await sandbox.enter('agent')) && Object.keys(setupOnly).length > 0) await sandbox.restart();
    return bases;
  }

  /**
   * What each repository's mirror has now for the run's branch, null where it cannot say: read from
   * the worker's own bare mirror's refs, else asked of host-side git.
   */
  private mirrorHeads(mounts: readonly string[]): Promise<(string | null)[]> {
    const repos = this.checkoutRepos().repos;
    return Promise.all(
      repos.map(async (repo, i) => {
        const mirror = mounts[i];
        if (!mirror) return null;
        const read = mirrorBranchHead(mirror, repo.branch);
        if (read !== null) return read;
        const ref = repo.branch ? `refs/heads/${repo.branch}` : 'HEAD';
        const head = await this.deps.mirrors.git.run(['--git-dir', mirror, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { signal: this.stopped.signal }).catch(() => '');
        return /^[0-9a-f]{40,64}$/.test(head.trim()) ? head.trim() : null;
      }),
    );
  }

  /** Keep what setup left for the next run of the same setup (a failure to is a notice, never the run's). */
  private async saveSnapshot(forbidden: string[], bases: readonly string[]): Promise<void> {
    const { snapshots, logger } = this.deps;
    const dirs = (this.sandbox as Sandbox).stateDirs();
    if (!snapshots || !dirs || !this.snapshotKey) return;
    try {
      const result = await snapshots.save(this.run.team_id, this.snapshotKey, dirs, forbidden, bases);
      this.uploader.add({
        type: 'notice',
        at: Date.now(),
        data:
          'saved' in result
            ? { level: 'info', message: savedMessage(result.saved), reason: 'snapshot_saved', snapshot: snapshotRecord(result.saved) }
            : { level: 'info', message: `No snapshot kept: ${result.skipped}.`, reason: 'snapshot_skipped' },
      });
    } catch (error) {
      // The copy's own words name host paths: the worker's log has them, the run a plain reason.
      logger.warn({ err: error, runId: this.run.run_id }, 'could not save a snapshot');
      this.notice('No snapshot kept: copying what setup left failed (the worker log has why); the next run starts cold.', 'snapshot_failed');
    }
  }

  /** On an image: setup runs on it as root; in its bash where it has one, else its sh (busybox, Alpine). */
  private async enterSetup(phase: 'setup' | 'agent'): Promise<{ shell: string }> {
    await (this.sandbox as Sandbox).enter(phase);
    const shell = await this.imageShell();
    if (!shell) {
      throw RunFailure.setup(
        'The image has no /bin/sh: setup commands need a shell in the image (a distroless image can run a harness, not setup commands).',
        'image_has_no_shell',
      );
    }
    return { shell };
  }

  /** The shell of the sandbox's root: the host's bash, else the image's bash or sh; null if the image has neither. */
  private async imageShell(): Promise<string | null> {
    if (!this.image) return '/bin/bash';
    const probe = await (this.sandbox as Sandbox).exec(['/bin/sh', '-c', '[ -x /bin/bash ]'], { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} }).catch(() => null);
    if (probe === null || probe.exitCode === null || probe.exitCode > 1) return null;
    return probe.exitCode === 0 ? '/bin/bash' : '/bin/sh';
  }

  /**
   * A spare for the environment's next run, shaped as its sandbox will be:
   * on the snapshot this run started from or just kept, on the same image and
   * mirrors (docs/design.md "Spare sandboxes"). Started now the run is under way,
   * so it never delays the run itself.
   */
  private prepareSpare(): void {
    const { spares, snapshots, images } = this.deps;
    if (!spares || !this.shape || !this.deps.backend.isolates) return;
    const team = this.run.team_id;
    const key = this.snapshotKey;
    const digest = this.image?.digest ?? null;
    // The snapshot as the next run finds it: held (no hit counted) for as long as the spare waits.
    const snapshot = key && snapshots ? snapshots.hold(team, key) : null;
    if (digest) images?.hold(digest);
    const release = (): void => {
      if (snapshot && key) snapshots?.release(key);
      if (digest) images?.release(digest);
    };
    try {
      spares.prepare(team, this.sandboxShape(this.shape.mounts, snapshot), release);
    } catch (error) {
      release();
      this.deps.logger.warn({ err: error, runId: this.run.run_id }, 'could not prepare a spare sandbox');
    }
  }

  /** CLAIMED → INPROGRESS; retried while the server is unreachable (the lease decides how long). */
  private async markStarted(): Promise<void> {
    // The claim's follow-ups go with the prompt: given to the agent as it starts.
    this.inbox.push(this.run.followups ?? []);
    this.startFollowups = this.inbox.take();
    await retry(() => this.deps.client.start(this.run.run_id, this.run.lease_token), {
      attempts: 20,
      baseMs: 100,
      maxMs: 2000,
      retryable: (error) => error instanceof ProtocolError && error.transient && this.lease.validForMs > 0,
      signal: this.stopped.signal,
    });
  }

  private async runHarness(harness: Harness, env: Record<string, string>): Promise<HarnessResult> {
    const run = this.run;
    const sandbox = this.sandbox as Sandbox;
    const output = new OutputCollector((e) => this.uploader.add(e), this.budget, this.redactor);
    try {
      const defaults = this.deps.agentBudgets;
      const execution = run.execution ?? 1;
      // The built-in agent continues the conversation so far (the CLIs resume their own sessions).
      const history = execution > 1 && harness.type === 'oz' ? await this.history() : undefined;
      const result = await harness.run({
        runId: run.run_id,
        prompt: startingPrompt(run.prompt, execution, this.startFollowups),
        followups: this.inbox,
        continuing: execution > 1,
        ...(history ? { history } : {}),
        harness: run.harness,
        sandbox,
        env,
        sink: {
          output: (stream, chunk) => output.push(stream, chunk),
          event: (type, data) => {
            output.flush(); // process output so far comes first
            this.budget.count(JSON.stringify(data).length); // events count against the run's output limit too
            this.uploader.add({ type, at: Date.now(), data });
          },
        },
        modelId: run.model_id,
        budgets: { maxSteps: run.max_steps ?? defaults.maxSteps, maxTokens: run.max_tokens ?? defaults.maxTokens, maxTimeMs: defaults.maxTimeMs },
        repoDirs: checkoutDirs(run.environment?.repos ?? []),
        shell: (await this.imageShell()) ?? '/bin/sh',
        imageWorkingDir: this.image?.config.workingDir ?? null,
        signal: this.stopped.signal,
        redact: (text) => this.redactor.redact(text),
        modelProxy: this.sockets?.hasModelProxy && sandbox.supportDirPath ? { socketPath: `${sandbox.supportDirPath}/model.sock`, token: this.token } : null,
      });
      this.usage = result.usage ?? null;
      return withReportedShutdown(withReportedFinish(result, this.reportedFinish), this.reportedShutdown);
    } finally {
      output.end();
    }
  }

  /** The run's conversation before this execution, for the built-in agent; a failure to fetch it fails the run (the agent would start without memory). */
  private async history(): Promise<{ type: string; data: Record<string, unknown> }[]> {
    try {
      return (await this.deps.client.history(this.run.run_id, this.run.lease_token)).events;
    } catch (error) {
      throw new RunFailure({
        state: 'ERROR',
        code: 'resource_unavailable',
        reason: 'history_unavailable',
        message: `The conversation so far could not be fetched from the server: ${(error as Error).message}`,
        retryable: true,
        cause: error,
      });
    }
  }

  /** Publish the run's changes (docs/results.md); a failure ends the run FAILED, naming it. */
  private async publish(env: Record<string, string>, bases: string[], mounts: string[], summary: string): Promise<Outcome> {
    const repos = this.run.environment?.repos ?? [];
    const secrets = this.secrets;
    try {
      // Committing is the platform's, on the host's system (an image need not have git).
      await (this.sandbox as Sandbox).enter('platform');
      const notes = await this.deps.publisher.publish({
        runId: this.run.run_id,
        title: this.run.title,
        summary,
        sandbox: this.sandbox as Sandbox,
        env: this.platformEnv(env),
        repos,
        dirs: checkoutDirs(repos),
        bases,
        // A branch the run was asked to start from takes its changes itself (never force-pushed).
        targets: this.checkoutRepos().targets,
        mirrors: mounts,
        ...(secrets?.env.GITHUB_TOKEN ? { githubToken: secrets.env.GITHUB_TOKEN } : {}),
        redact: (text) => this.redactor.redact(text),
        artifact: (type, data) => this.uploader.add({ type: 'artifact', at: Date.now(), data: { artifact_type: type, data } }),
        // On the record before the push: the server takes it only under a live lease, so a
        // fenced worker pushes nothing, and one frozen after its push has left the branch named.
        recordBranch: async (data) => {
          this.uploader.add({ type: 'artifact', at: Date.now(), data: { artifact_type: 'BRANCH', data } });
          await this.uploader.flush();
          if (this.stopReason) throw new Error('the run was stopped before its branch was pushed');
        },
        signal: this.stopped.signal,
      });
      await this.publishDiffs(env, bases);
      return { state: 'SUCCEEDED', message: { message: [summary, ...notes].join('\n') } };
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      return { state: 'FAILED', message: { message: `${summary}\n${error.message}`, reason: 'publish_failed' } };
    }
  }

  /** The patch of the run's changes, for the run's page (`GET /agent/runs/{id}/diff`); a failure is a notice, never the run's. */
  private async publishDiffs(env: Record<string, string>, bases: readonly string[]): Promise<void> {
    const repos = this.run.environment?.repos ?? [];
    try {
      const diffs = await collectDiffs({
        sandbox: this.sandbox as Sandbox,
        env: { ...this.platformEnv(env), GIT_TERMINAL_PROMPT: '0' },
        repos,
        dirs: checkoutDirs(repos),
        starts: repos.map((_repo, i) => this.run.diff_bases?.[i] ?? bases[i] ?? ''),
        redact: (text) => this.redactor.redact(text),
      });
      if (diffs.length > 0) await this.deps.client.putDiffs(this.run.run_id, this.run.lease_token, diffs);
    } catch (error) {
      this.deps.logger.warn({ err: error, runId: this.run.run_id }, 'could not record the diff');
      this.notice("The run's diff could not be recorded (the worker log has why); its branch has the changes.", 'diff_not_recorded');
    }
  }

  /**
   * Whatever the phases reached: a limit the kernel enforced is recorded as
   * the stop reason, then the sandbox, the sockets and the last events go.
   * Each step runs whatever the one before did: the run must still finish.
   */
  /** A process the kernel killed for memory ends the run as over budget, whatever the harness made of it: recorded as the stop reason. */
  private async limitHit(): Promise<string | null> {
    const hit = this.stopReason ? null : await this.sandbox?.limitHit().catch(() => null);
    if (!hit) return null;
    const limits = this.limits;
    this.stopReason = { kind: 'limit', limit: hit, value: hit === 'pids' ? limits.pids : hit === 'memory' ? limits.memoryBytes : limits.diskBytes };
    return hit;
  }

  /** `idle`: the sandbox and sockets stay (kept for a follow-up); else they go. The last events go either way. */
  private async teardown(idle: boolean): Promise<void> {
    const { logger } = this.deps;
    const runId = this.run.run_id;
    if (!idle) {
      await this.sandbox?.destroy().catch((error: unknown) => logger.error({ err: error, runId }, 'could not remove the sandbox'));
      // Only once nothing of the run is mounted on it may its image be evicted.
      if (this.adopted) this.adopted.release();
      else {
        if (this.image) this.deps.images?.release(this.image.digest);
        if (this.restored && this.snapshotKey) this.deps.snapshots?.release(this.snapshotKey);
      }
      await this.sockets?.close().catch((error: unknown) => logger.error({ err: error, runId }, 'could not stop the support socket'));
    }
    await this.network.stop();
    if (this.killTimer) clearTimeout(this.killTimer);
    if (this.stopReason?.kind !== 'fenced') {
      await this.uploader.flush().catch((error: unknown) => logger.warn({ err: error, runId }, 'could not send the last events'));
    }
  }

  /** The terminal state, redacted and within the protocol's bounds; retried while the server is unreachable. */
  private async finish(outcome: Outcome, idleForMs: number, audit: NetworkAudit | undefined): Promise<boolean> {
    const message = outcome.message ? boundedStatus(this.redactor.redactDeep(outcome.message)) : undefined;
    try {
      await retry(
        () =>
          this.deps.client.finish(this.run.run_id, {
            lease_token: this.run.lease_token,
            state: outcome.state,
            ...(message ? { status_message: message } : {}),
            ...(this.usage ? { usage: this.usage } : {}),
            followups_through: this.inbox.through,
            ...(idleForMs > 0 ? { idle_for_ms: idleForMs } : {}),
            ...(audit ? { network_audit: audit } : {}),
          }),
        { attempts: 10, baseMs: 200, maxMs: 2000, retryable: (error) => !(error instanceof ProtocolError && !error.transient) },
      );
      return true;
    } catch (error) {
      this.deps.logger.warn({ err: error, runId: this.run.run_id }, 'finish refused or undeliverable (the lease was lost)');
      return false;
    }
  }

  /** What the platform's own steps (clone, commit) run with: the run's variables, on the host system's PATH. */
  private platformEnv(env: Record<string, string>): Record<string, string> {
    return this.image ? { ...env, PATH: this.deps.baseEnv.PATH ?? '/usr/bin:/bin' } : env;
  }

  /** The run's environment: a clean base, the image's `Env`, the environment's plain variables, the run's ids (under Oz's names and Warp's). */
  private runEnv(): Record<string, string> {
    const run = this.run;
    const sandbox = this.sandbox;
    const fromImage = this.image ? imageEnv(this.image.config.env) : {};
    return {
      ...this.deps.baseEnv,
      ...fromImage,
      ...(run.environment?.env ?? {}),
      ...this.network.env(),
      HOME: fromImage.HOME ?? sandbox?.workspacePath ?? '/tmp',
      OZ_RUN_ID: run.run_id,
      WARP_RUN_ID: run.run_id,
      OZ_HARNESS: run.harness.type,
      WARP_HARNESS: run.harness.type,
      ...(sandbox?.ozCliPath ? { OZ_CLI: sandbox.ozCliPath, WARP_CLI: sandbox.ozCliPath } : {}),
      ...(sandbox?.supportSocketPath ? { [SUPPORT_SOCKET_ENV]: sandbox.supportSocketPath, [SUPPORT_TOKEN_ENV]: this.token } : {}),
      ...(run.environment ? { OZ_ENVIRONMENT_ID: run.environment.id } : {}),
      ...(run.schedule_id ? { OZ_SCHEDULE_ID: run.schedule_id } : {}),
      // Oz names the spawning run so a child can report back to it; older servers send no field.
      ...(run.parent_run_id ? { OZ_PARENT_RUN_ID: run.parent_run_id, WARP_PARENT_RUN_ID: run.parent_run_id } : {}),
    };
  }
}

/** The run's secrets as variables; a GitHub token also under Oz's second name for it, unless a secret of that name is there. */
function secretEnv(env: Record<string, string>): Record<string, string> {
  return env.GITHUB_TOKEN !== undefined && env.GITHUB_ACCESS_TOKEN === undefined ? { ...env, GITHUB_ACCESS_TOKEN: env.GITHUB_TOKEN } : env;
}

function shutdownMessage(shutdown: ReportedShutdown): string {
  return shutdown.errorMessage ?? `error category ${shutdown.errorCategory ?? 'unknown'}`;
}

/** A shutdown reported with an error fails the run with it (unless the harness already failed it); a clean one changes nothing. */
function withReportedShutdown(result: HarnessResult, shutdown: ReportedShutdown | null): HarnessResult {
  if (!shutdown || (shutdown.errorCategory === undefined && shutdown.errorMessage === undefined) || result.failure) return result;
  return { ...result, ok: false, failure: { state: 'FAILED', message: { message: shutdownMessage(shutdown), reason: shutdown.errorCategory ?? 'harness_reported_error' } } };
}

/** What the agent reported with `finish-task` overrides the harness's summary; a reported failure fails the run. */
function withReportedFinish(result: HarnessResult, finish: ReportedFinish | null): HarnessResult {
  if (!finish) return result;
  const failure = finish.status === 'failure' ? { state: 'FAILED' as const, message: { message: finish.summary, reason: 'agent_reported_failure' } } : undefined;
  return { ...result, summary: finish.summary, ok: result.ok && !failure, ...(result.failure || failure ? { failure: result.failure ?? failure } : {}) };
}
