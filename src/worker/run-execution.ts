import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ModelProviderSettings } from '../core/config.js';
import type { RepoSpec } from '../core/environment.js';
import { startModelProxy } from './model-proxy.js';
import type { RunStatusMessage, RunUsage } from '../core/run.js';
import type { ClaimedRun, FinishState } from '../core/worker-protocol.js';
import type { AgentBudgets, Harness, HarnessResult } from '../agent/harness.js';
import type { LimitKind, Sandbox, SandboxBackend, SandboxLimits } from '../sandbox/sandbox-backend.js';
import { EventUploader } from './event-uploader.js';
import { OutputBudget, OutputCollector } from './output-collector.js';
import { ProtocolError, type ProtocolClient } from './protocol-client.js';
import { Redactor } from '../secrets/redactor.js';
import { FetchError, type MirrorCache } from './provisioning/mirror-cache.js';
import { PublishError, type Publisher } from './results/publisher.js';
import { startSupportServer, type ReportedFinish } from './support-server.js';
import type { SocketServer } from './socket-server.js';
import { SUPPORT_SOCKET_ENV, SUPPORT_TOKEN_ENV } from '../harness-support/client.js';
import { checkoutDirs, SetupFailure, setUpWorkspace } from './provisioning/workspace-setup.js';

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
  publisher: Publisher;
  /** Where runs' harness-support sockets are made (a directory each). */
  supportRoot: string;
  /** Executables the worker provides to every sandbox (agent CLIs, the model bridge). */
  tools: readonly { name: string; path: string }[];
  /** The worker's model providers: what the model proxy of agent CLIs forwards to. */
  providers: ModelProviderSettings;
  /** Limits where the run's environment sets none. */
  sandboxDefaults: SandboxLimits & { outputBytes: number };
  /** Agent budgets where the run sets none. */
  agentBudgets: AgentBudgets;
}

type RunLimit = LimitKind | 'output';

type StopReason =
  | { kind: 'cancel'; message: RunStatusMessage }
  | { kind: 'runtime'; limitMs: number }
  | { kind: 'limit'; limit: RunLimit; value: number }
  | { kind: 'fenced' };

type Outcome = { state: FinishState; message?: RunStatusMessage };

const MIB = 1024 * 1024;

/**
 * One claimed run, start to finish:
 *
 *   mirrors fetched → sandbox up → repos cloned, setup commands → start (INPROGRESS) → harness
 *     ──exit──▶ flush events → sandbox destroyed → finish
 *   heartbeat every ttl/6, control long-poll (cancel → SIGTERM, SIGKILL after grace),
 *   max runtime counted from the claim, limits (memory, pids, disk, output) end the run.
 *
 * Self-fencing: if the lease cannot be renewed, the run is killed before the
 * lease would expire (a 409 means it is already gone) and nothing more is
 * written — the sweeper owns it from then on.
 */
export class RunExecution {
  private sandbox: Sandbox | null = null;
  private stopReason: StopReason | null = null;
  private readonly done = new AbortController();
  /** Aborted when the run is stopped: kills a repository fetch in progress. */
  private readonly stopped = new AbortController();
  private leaseDeadline: number;
  private killTimer: NodeJS.Timeout | null = null;
  private redactor = new Redactor([]);
  private support: SocketServer | null = null;
  private supportDir: string | null = null;
  private modelProxy: SocketServer | null = null;
  private readonly supportToken = randomBytes(24).toString('hex');
  /** What the agent said with `oz harness-support finish-task`, if it did. */
  private reportedFinish: ReportedFinish | null = null;
  readonly finished: Promise<void>;

  constructor(
    private readonly run: ClaimedRun,
    private readonly deps: ExecutionDeps,
  ) {
    this.leaseDeadline = Date.now() + run.lease_ttl_ms;
    this.finished = this.execute().catch((error: unknown) => {
      deps.logger.error({ err: error, runId: run.run_id }, 'run execution failed');
    });
  }

  get runId(): string {
    return this.run.run_id;
  }

  /** Stop the run (cancel request, drain): SIGTERM now, SIGKILL after the grace period. */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopped.abort();
    this.sandbox?.signal('SIGTERM');
    this.killTimer = setTimeout(() => this.sandbox?.signal('SIGKILL'), reason.kind === 'fenced' ? 0 : this.deps.killGraceMs);
  }

  cancel(message: RunStatusMessage): void {
    this.stop({ kind: 'cancel', message });
  }

  /** The run's limits: the environment's, else this worker's defaults. */
  private limits(): SandboxLimits & { outputBytes: number } {
    const own = this.run.environment?.limits ?? {};
    const fallback = this.deps.sandboxDefaults;
    return {
      pids: own.pids ?? fallback.pids,
      memoryBytes: own.memoryBytes ?? fallback.memoryBytes,
      diskBytes: own.diskBytes ?? fallback.diskBytes,
      outputBytes: own.outputBytes ?? fallback.outputBytes,
    };
  }

  private async execute(): Promise<void> {
    const { client, logger } = this.deps;
    const run = this.run;
    const lease = run.lease_token;
    const secrets = 'error' in run.secrets ? null : run.secrets;
    this.redactor = new Redactor(secrets ? [...Object.values(secrets.env), ...Object.values(secrets.setup_env), ...(secrets.harness_auth ? [secrets.harness_auth] : [])] : []);
    const uploader = new EventUploader(client, run.run_id, lease, () => this.stop({ kind: 'fenced' }), this.redactor);
    const notice = (message: string, reason: string): void => uploader.add({ type: 'notice', at: Date.now(), data: { level: 'warn', message, reason } });
    const heartbeat = this.heartbeatLoop();
    const control = this.controlLoop();
    const limits = this.limits();
    const budget = new OutputBudget(Math.min(this.deps.maxOutputBytes, limits.outputBytes), limits.outputBytes, () =>
      this.stop({ kind: 'limit', limit: 'output', value: limits.outputBytes }),
    );
    let outcome: Outcome | null = null;
    let usage: RunUsage | null = null;
    let runtimeTimer: NodeJS.Timeout | null = null;
    try {
      if (run.cancel_requested) this.cancel({ message: 'Cancelled before it started.', reason: 'cancelled_by_user' });
      const harness = this.deps.harnesses.get(run.harness.type);
      if (!harness) {
        outcome = {
          state: 'FAILED',
          message: { message: `The ${run.harness.type} harness is not available on this worker yet.`, error_code: 'feature_not_available', reason: `harness_${run.harness.type}` },
        };
        return;
      }
      if ('error' in run.secrets) {
        outcome = { state: 'FAILED', message: { message: run.secrets.error.message, error_code: 'invalid_request', reason: run.secrets.error.reason } };
        return;
      }
      if (secrets && secrets.unknown.length > 0) {
        notice(`Secrets not found (neither the team's nor the run creator's): ${secrets.unknown.join(', ')}. The run goes on without them.`, 'secrets_not_found');
      }
      runtimeTimer = run.max_runtime_ms ? setTimeout(() => this.stop({ kind: 'runtime', limitMs: run.max_runtime_ms ?? 0 }), run.max_runtime_ms) : null;
      const environment = run.environment;
      const repos = environment?.repos ?? [];
      let mounts: string[];
      try {
        mounts = [];
        for (const repo of repos) mounts.push(await this.deps.mirrors.ensure(run.team_id, repo.url, this.stopped.signal, this.deps.publisher.fetchAuth(repo.url, secrets?.env.GITHUB_TOKEN)));
      } catch (error) {
        if (!(error instanceof FetchError)) throw error;
        outcome = { state: 'FAILED', message: { message: `Could not fetch a repository: ${error.message}`, error_code: 'environment_setup_failed', reason: 'repository_fetch_failed' } };
        return;
      }
      if (this.stopReason) return;
      const supportDir = await this.startSupport(uploader);
      if (run.harness.type === 'claude' || run.harness.type === 'codex') await this.startModelProxy(supportDir);
      try {
        this.sandbox = await this.deps.backend.create({
          runId: run.run_id,
          network: environment?.network ?? 'off',
          limits,
          mounts,
          supportDir,
          tools: this.deps.tools,
          onLimit: (kind) => this.stop({ kind: 'limit', limit: kind, value: kind === 'pids' ? limits.pids : kind === 'memory' ? limits.memoryBytes : limits.diskBytes }),
        });
      } catch (error) {
        outcome = {
          state: 'ERROR',
          message: { message: `The sandbox could not start: ${(error as Error).message}`, error_code: 'resource_unavailable', retryable: true, reason: 'sandbox_start_failed' },
        };
        return;
      }
      if (!this.deps.backend.isolates) {
        notice(`This run executes on the "${this.deps.backend.name}" backend: no isolation; network policy and limits (memory, pids, disk) are not enforced.`, 'not_isolated');
      }
      if (environment?.dockerImage) {
        notice(`docker_image "${environment.dockerImage}" is not applicable to the ${this.deps.backend.name} backend: the run uses the worker host's system.`, 'docker_image_not_applicable');
      }
      if (this.stopReason) return;
      const env = { ...this.runEnv(), ...(secrets?.env ?? {}) };
      const setupOnly = secrets?.setup_env ?? {};
      const setupOutput = new OutputCollector((e) => uploader.add(e), budget, 'setup');
      let bases: string[];
      try {
        bases = await setUpWorkspace({
          sandbox: this.sandbox,
          repos,
          setupCommands: environment?.setupCommands ?? [],
          env: { ...env, ...setupOnly },
          emit: (e) => uploader.add(e),
          output: (stream, chunk) => setupOutput.push(stream, chunk),
          stopped: () => this.stopReason !== null,
        });
      } catch (error) {
        if (!(error instanceof SetupFailure)) throw error;
        outcome = { state: 'FAILED', message: error.status };
        return;
      } finally {
        setupOutput.flush();
      }
      if (this.stopReason) return;
      // Setup-only secrets live in the environ of whatever setup left running
      // and in the memory of the init that started it: nothing of setup
      // survives into the harness then (DESIGN.md "Secrets" 5).
      if (Object.keys(setupOnly).length > 0) await this.sandbox.restart();
      await uploader.flush(); // setup's events come before the state change
      await client.start(run.run_id, lease);
      const output = new OutputCollector((e) => uploader.add(e), budget);
      try {
        const defaults = this.deps.agentBudgets;
        const result = await harness.run({
          runId: run.run_id,
          prompt: run.prompt,
          harness: run.harness,
          sandbox: this.sandbox,
          env,
          sink: {
            output: (stream, chunk) => output.push(stream, chunk),
            event: (type, data) => {
              output.flush(); // process output so far comes first
              budget.count(JSON.stringify(data).length); // events count against the run's output limit too
              uploader.add({ type, at: Date.now(), data });
            },
          },
          modelId: run.model_id,
          budgets: { maxSteps: run.max_steps ?? defaults.maxSteps, maxTokens: run.max_tokens ?? defaults.maxTokens, maxTimeMs: defaults.maxTimeMs },
          repoDirs: checkoutDirs(repos),
          signal: this.stopped.signal,
          redact: (text) => this.redactor.redact(text),
          modelProxy: this.modelProxy && this.sandbox.supportDirPath ? { socketPath: `${this.sandbox.supportDirPath}/model.sock`, token: this.supportToken } : null,
        });
        usage = result.usage ?? null;
        const final = withReportedFinish(result, this.reportedFinish);
        if (!this.stopReason) outcome = harnessOutcome(final);
        if (!this.stopReason && outcome?.state === 'SUCCEEDED' && repos.length > 0) {
          outcome = await this.publish({ env, repos, bases, mounts, summary: final.summary, uploader });
        }
      } finally {
        output.flush();
      }
    } catch (error) {
      if (error instanceof ProtocolError && error.stale) {
        this.stopReason = { kind: 'fenced' };
      } else if (!this.stopReason && this.sandbox && (await this.sandbox.limitHit()) === null && /sandbox is gone/.test((error as Error).message)) {
        outcome = { state: 'ERROR', message: { message: 'The sandbox ended unexpectedly.', error_code: 'resource_unavailable', retryable: true, reason: 'sandbox_lost' } };
      } else if (!this.stopReason) {
        logger.error({ err: error, runId: run.run_id }, 'run failed on the platform side');
        outcome = { state: 'ERROR', message: { message: `The worker failed: ${(error as Error).message}`, error_code: 'internal_error', retryable: true, reason: 'worker_error' } };
      }
    } finally {
      if (runtimeTimer) clearTimeout(runtimeTimer);
      // A process the kernel killed for memory ends the run as over budget,
      // whatever the harness made of it.
      const hit = this.stopReason ? null : await this.sandbox?.limitHit().catch(() => null);
      if (hit) this.stopReason = { kind: 'limit', limit: hit, value: hit === 'pids' ? limits.pids : hit === 'memory' ? limits.memoryBytes : limits.diskBytes };
      // Each step of the teardown runs whatever the one before did: the run must still finish.
      await this.sandbox?.destroy().catch((error: unknown) => logger.error({ err: error, runId: run.run_id }, 'could not remove the sandbox'));
      await this.stopSupport().catch((error: unknown) => logger.error({ err: error, runId: run.run_id }, 'could not stop the support socket'));
      if (this.killTimer) clearTimeout(this.killTimer);
      await uploader.flush().catch((error: unknown) => logger.warn({ err: error, runId: run.run_id }, 'could not send the last events'));
      const final = this.finalOutcome(outcome);
      if (final) {
        await this.finish(final.state, final.message, usage);
      }
      this.done.abort();
      uploader.stop();
      await Promise.allSettled([heartbeat, control]);
    }
  }

  /** The run's harness-support socket (`oz harness-support` inside the sandbox); returns its directory. */
  private async startSupport(uploader: EventUploader): Promise<string> {
    const dir = mkdtempSync(join(this.deps.supportRoot, `${this.run.run_id}-`));
    this.supportDir = dir;
    chmodSync(dir, 0o711);
    this.support = await startSupportServer(join(dir, 'sock'), this.supportToken, {
      pullRequest: (url, branch) => uploader.add({ type: 'artifact', at: Date.now(), data: { artifact_type: 'PULL_REQUEST', data: { url, branch } } }),
      notify: (message) => uploader.add({ type: 'notice', at: Date.now(), data: { level: 'info', message, reason: 'agent_notification' } }),
      finish: (finish) => (this.reportedFinish = finish),
    });
    return dir;
  }

  /**
   * The model proxy of agent CLIs: the key is the harness's auth secret, else
   * the run's typed secret, else the worker's own; the CLI only ever holds the run's token.
   */
  private async startModelProxy(supportDir: string): Promise<void> {
    const secrets = 'error' in this.run.secrets ? null : this.run.secrets;
    const { providers } = this.deps;
    const type = this.run.harness.type;
    const auth = secrets?.harness_auth;
    const withoutV1 = (url: string | undefined, fallback: string): string => (url ?? fallback).replace(/\/v1\/?$/, '');
    this.modelProxy = await startModelProxy(join(supportDir, 'model.sock'), this.supportToken, {
      anthropic: {
        base: withoutV1(providers.anthropicBaseUrl, 'https://api.anthropic.com'),
        key: (type === 'claude' ? auth : undefined) ?? secrets?.env.ANTHROPIC_API_KEY ?? providers.anthropicApiKey,
        header: 'x-api-key',
      },
      openai: {
        base: withoutV1(providers.openaiBaseUrl, 'https://api.openai.com'),
        key: (type === 'codex' ? auth : undefined) ?? secrets?.env.OPENAI_API_KEY ?? providers.openaiApiKey,
        header: 'authorization',
      },
    }, (text) => this.redactor.redact(text));
  }

  private async stopSupport(): Promise<void> {
    await this.modelProxy?.close().catch(() => {});
    this.modelProxy = null;
    await this.support?.close().catch(() => {});
    this.support = null;
    if (this.supportDir) rmSync(this.supportDir, { recursive: true, force: true });
    this.supportDir = null;
  }

  /** Publish the run's changes (DESIGN.md "Git"); a failure ends the run FAILED, naming it. */
  private async publish(
    parts: { env: Record<string, string>; repos: readonly RepoSpec[]; bases: string[]; mounts: string[]; summary: string; uploader: EventUploader },
  ): Promise<Outcome> {
    const sandbox = this.sandbox as Sandbox;
    const secrets = 'error' in this.run.secrets ? null : this.run.secrets;
    try {
      const notes = await this.deps.publisher.publish({
        runId: this.run.run_id,
        title: this.run.title,
        summary: parts.summary,
        sandbox,
        env: parts.env,
        repos: parts.repos,
        dirs: checkoutDirs(parts.repos),
        bases: parts.bases,
        mirrors: parts.mounts,
        ...(secrets?.env.GITHUB_TOKEN ? { githubToken: secrets.env.GITHUB_TOKEN } : {}),
        redact: (text) => this.redactor.redact(text),
        artifact: (type, data) => parts.uploader.add({ type: 'artifact', at: Date.now(), data: { artifact_type: type, data } }),
        signal: this.stopped.signal,
      });
      return { state: 'SUCCEEDED', message: { message: [parts.summary, ...notes].join('\n') } };
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      return { state: 'FAILED', message: { message: `${parts.summary}\n${error.message}`, reason: 'publish_failed' } };
    }
  }

  private finalOutcome(outcome: Outcome | null): Outcome | null {
    const reason = this.stopReason;
    if (reason?.kind === 'fenced') return null;
    if (reason?.kind === 'cancel') return { state: 'CANCELLED', message: reason.message };
    if (reason?.kind === 'runtime') {
      return {
        state: 'FAILED',
        message: { message: `The run exceeded its maximum runtime of ${Math.round(reason.limitMs / 1000)} s.`, error_code: 'budget_exceeded', reason: 'max_runtime_exceeded' },
      };
    }
    if (reason?.kind === 'limit') {
      const amount = reason.limit === 'pids' ? `${reason.value} processes` : `${Math.round(reason.value / MIB)} MiB`;
      const what = { memory: 'memory', pids: 'process', disk: 'disk', output: 'output' }[reason.limit];
      return {
        state: 'FAILED',
        message: { message: `The run exceeded its ${what} limit (${amount}).`, error_code: 'budget_exceeded', reason: `${reason.limit}_limit_exceeded` },
      };
    }
    return outcome;
  }

  private async finish(state: FinishState, message: RunStatusMessage | undefined, usage: RunUsage | null): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const redacted = message ? this.redactor.redactDeep(message) : undefined;
        await this.deps.client.finish(this.run.run_id, {
          lease_token: this.run.lease_token,
          state,
          ...(redacted ? { status_message: redacted } : {}),
          ...(usage ? { usage } : {}),
        });
        return;
      } catch (error) {
        if (error instanceof ProtocolError && !error.transient) {
          this.deps.logger.warn({ err: error, runId: this.run.run_id }, 'finish refused (the lease was lost)');
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** attempt)));
      }
    }
  }

  /** The run's environment: a clean base, the environment's plain variables, the run's ids. */
  private runEnv(): Record<string, string> {
    return {
      ...this.deps.baseEnv,
      ...(this.run.environment?.env ?? {}),
      HOME: this.sandbox?.workspacePath ?? '/tmp',
      OZ_RUN_ID: this.run.run_id,
      WARP_RUN_ID: this.run.run_id,
      OZ_HARNESS: this.run.harness.type,
      ...(this.sandbox?.supportSocketPath ? { [SUPPORT_SOCKET_ENV]: this.sandbox.supportSocketPath, [SUPPORT_TOKEN_ENV]: this.supportToken } : {}),
      ...(this.run.environment ? { OZ_ENVIRONMENT_ID: this.run.environment.id } : {}),
      ...(this.run.schedule_id ? { OZ_SCHEDULE_ID: this.run.schedule_id } : {}),
    };
  }

  private async heartbeatLoop(): Promise<void> {
    const interval = Math.max(500, Math.floor(this.run.lease_ttl_ms / 6));
    const margin = Math.min(5000, interval);
    while (!this.done.signal.aborted) {
      await sleep(interval, this.done.signal);
      if (this.done.signal.aborted) return;
      const sentAt = Date.now();
      try {
        const beat = await this.deps.client.heartbeat(this.run.run_id, this.run.lease_token);
        this.leaseDeadline = sentAt + this.run.lease_ttl_ms;
        if (beat.cancel_requested) this.cancel({ message: 'Cancelled by request.', reason: 'cancelled_by_user' });
      } catch (error) {
        if (error instanceof ProtocolError && error.stale) {
          this.deps.logger.warn({ runId: this.run.run_id }, 'lease lost; stopping the run');
          this.stop({ kind: 'fenced' });
          return;
        }
      }
      if (Date.now() > this.leaseDeadline - margin) {
        this.deps.logger.warn({ runId: this.run.run_id }, 'cannot renew the lease; stopping the run before it expires');
        this.stop({ kind: 'fenced' });
        return;
      }
    }
  }

  private async controlLoop(): Promise<void> {
    while (!this.done.signal.aborted && !this.stopReason) {
      try {
        const control = await this.deps.client.control(this.run.run_id, this.run.lease_token, 25_000, this.done.signal);
        if (control.cancel_requested) {
          this.cancel({ message: 'Cancelled by request.', reason: 'cancelled_by_user' });
          return;
        }
      } catch (error) {
        if (this.done.signal.aborted) return;
        if (error instanceof ProtocolError && error.stale) return;
        await sleep(1000, this.done.signal);
      }
    }
  }
}

/** What the agent reported with `finish-task` overrides the harness's summary; a reported failure fails the run. */
function withReportedFinish(result: HarnessResult, finish: ReportedFinish | null): HarnessResult {
  if (!finish) return result;
  const failure = finish.status === 'failure' ? { state: 'FAILED' as const, message: { message: finish.summary, reason: 'agent_reported_failure' } } : undefined;
  return { ...result, summary: finish.summary, ok: result.ok && !failure, ...(result.failure || failure ? { failure: result.failure ?? failure } : {}) };
}

/** A harness's result as the run's end: success, the harness's own failure, or "harness failed". */
function harnessOutcome(result: HarnessResult): Outcome {
  if (result.ok) return { state: 'SUCCEEDED', message: { message: result.summary } };
  if (result.failure) return { state: result.failure.state, message: result.failure.message };
  return { state: 'FAILED', message: { message: result.summary, reason: 'harness_failed' } };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
