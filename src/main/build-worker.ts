import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CommandHarness } from '../agent/command/command-harness.js';
import { OzHarness } from '../agent/builtin/oz-harness.js';
import { ClaudeHarness } from '../agent/external-cli/claude-harness.js';
import { CodexHarness } from '../agent/external-cli/codex-harness.js';
import { MODEL_BRIDGE_TOOL } from '../agent/external-cli/cli-harness.js';
import { installedClaude, installedCodex } from '../agent/external-cli/locate.js';
import { fileURLToPath } from 'node:url';
import type { Harness } from '../agent/harness.js';
import { SETTINGS, type SandboxBackendName, type WorkerConfig } from '../core/config.js';
import { OzError } from '../core/errors.js';
import { BwrapBackend, checkAncestorsSearchable, SandboxUnavailableError } from '../sandbox/bwrap/bwrap-backend.js';
import { closeInheritedFds } from '../sandbox/close-inherited-fds.js';
import { DirectBackend } from '../sandbox/direct/direct-backend.js';
import { DockerBackend, DockerUnavailableError } from '../sandbox/docker/docker-backend.js';
import { ownWorkerDir } from '../sandbox/worker-dirs.js';
import type { SandboxBackend } from '../sandbox/sandbox-backend.js';
import { ImageStore } from '../worker/images/image-store.js';
import { EngineImageStore } from '../worker/images/engine-image-store.js';
import { SnapshotStore } from '../worker/snapshots/snapshot-store.js';
import { hostGitContainment } from '../worker/git-limits.js';
import { MirrorCache } from '../worker/provisioning/mirror-cache.js';
import { RemotePolicy } from '../worker/provisioning/remote-policy.js';
import { ProtocolClient } from '../worker/protocol-client.js';
import { forgeGitHost, gitUrl } from '../worker/results/forge.js';
import { Publisher } from '../worker/results/publisher.js';
import { Worker } from '../worker/worker.js';
import { SYSTEM_PATH } from '../core/system-path.js';
import { buildModelCatalog } from '../core/model-catalog-file.js';
import { OZ_VERSION } from '../core/version.js';

/** What every run's processes start from: never the worker's own environment (it holds credentials). */
const BASE_ENV = {
  // /oz/bin last: `oz harness-support` inside a bwrap sandbox.
  PATH: `${SYSTEM_PATH}:/oz/bin`,
  LANG: 'C.UTF-8',
  TERM: 'dumb',
};

/** The sandbox backend by name; bwrap refuses to start, with the one line to print, on a host that cannot run it. */
async function openBackend(name: SandboxBackendName, config: WorkerConfig, logger: Logger): Promise<SandboxBackend> {
  if (name === 'direct') {
    logger.warn(
      'sandbox backend "direct": runs execute WITHOUT isolation, as this worker\'s user, on this host, with no network policy or limits. Use only with trusted prompts and code.',
    );
    return new DirectBackend(undefined, { onWarning: (message) => logger.warn(message) });
  }
  if (name === 'docker') {
    try {
      const backend = await DockerBackend.open({
        hostPath: config.hostPath,
        ...(config.sandboxRoot ? { root: config.sandboxRoot } : {}),
        workerName: config.workerName,
        onWarning: (message) => logger.warn(message),
      });
      logger.info({ enforcement: backend.enforcement }, 'sandbox backend docker ready');
      return backend;
    } catch (error) {
      if (error instanceof DockerUnavailableError) throw new OzError('invalid_request', error.message);
      throw error;
    }
  }
  try {
    const backend = await BwrapBackend.open({
      hostPath: config.hostPath,
      ...(config.sandboxRoot ? { root: config.sandboxRoot } : {}),
      onWarning: (message) => logger.warn(message),
    });
    logger.info({ enforcement: backend.enforcement }, 'sandbox backend bwrap ready');
    return backend;
  } catch (error) {
    if (error instanceof SandboxUnavailableError) throw new OzError('invalid_request', error.message);
    throw error;
  }
}

/** The model bridge and the agent CLIs this worker provides to every sandbox (read-only). */
function agentTools(config: WorkerConfig): { name: string; path: string }[] {
  const tools = [{ name: MODEL_BRIDGE_TOOL, path: fileURLToPath(new URL('../in-sandbox/model-bridge.js', import.meta.url)) }];
  for (const [variable, path] of [
    [SETTINGS.claudeBin.env, config.claudeBin],
    [SETTINGS.codexBin.env, config.codexBin],
  ] as const) {
    if (path !== null && path !== 'off' && !existsSync(path)) throw new OzError('invalid_request', `${variable}: ${path} does not exist (a path, or off)`);
  }
  const claude = config.claudeBin === 'off' ? null : (config.claudeBin ?? installedClaude());
  const codex = config.codexBin === 'off' ? null : (config.codexBin ?? installedCodex());
  if (claude) tools.push({ name: 'claude', path: claude });
  if (codex) tools.push({ name: 'codex', path: codex });
  return tools;
}

/**
 * Open the sandbox backend (which may refuse this host) and the mirror cache,
 * then return how to build the worker once the server's URL is known: the
 * composition roots' one way to make one.
 */
export async function prepareWorker(args: {
  token: string;
  backend: SandboxBackendName;
  config: WorkerConfig;
  logger: Logger;
  concurrency?: number;
  /** The worker id's prefix (the embedded worker's marks it as the server's own). */
  idPrefix?: string;
}): Promise<(serverUrl: string) => Worker> {
  const { config } = args;
  const closed = closeInheritedFds();
  if (closed.length > 0) args.logger.debug({ fds: closed }, 'closed descriptors inherited from the parent process (they would reach the sandboxes)');
  const backend = await openBackend(args.backend, config, args.logger);
  // The mirrors and the support sockets are bound into bwrap sandboxes from here, as the sandbox's uid.
  if (backend instanceof BwrapBackend && process.getuid?.() === 0) {
    mkdirSync(config.cacheDir, { recursive: true });
    try {
      checkAncestorsSearchable(join(config.cacheDir, 'support'), 'the cache directory (repository mirrors, run sockets)', 'OZ_CACHE_DIR');
    } catch (error) {
      throw new OzError('invalid_request', (error as Error).message);
    }
  }
  const forgeHost = forgeGitHost(config.results);
  const mirrors = new MirrorCache(config.cacheDir, config.fileRepoRoots, (url) => gitUrl(url, config.results), {
    limits: { memoryBytes: config.hostGit.memoryBytes, maxFileBytes: config.hostGit.maxFileBytes },
    allowedHosts: [...config.hostGit.allowedHosts, ...(forgeHost ? [forgeHost] : [])],
    logger: args.logger,
  });
  args.logger.info({ containment: hostGitContainment(), allowedHosts: config.hostGit.allowedHosts }, 'host-side git: limits and destinations');
  const publisher = new Publisher(config.results, mirrors, config.cacheDir);
  // The docker backend's engine pulls and keeps images itself; bwrap's come from the worker's own store.
  const images =
    backend instanceof DockerBackend
      ? new EngineImageStore(backend.images, config.insecureRegistries)
      : backend.runsImages
        ? new ImageStore(config.cacheDir, { insecureRegistries: config.insecureRegistries, maxBytes: config.imageStoreBytes })
        : null;
  // Warm starts keep host directories: the workspace and the image's writable layer (bwrap's overlay, the container's own).
  const snapshots = backend.runsImages && config.snapshotStoreBytes > 0 ? new SnapshotStore(config.cacheDir, config.snapshotStoreBytes) : null;
  if (!images)
    args.logger.info(
      { backend: backend.name, why: backend instanceof BwrapBackend ? backend.imagesUnavailable : undefined },
      "environments' images do not apply here: runs use the host's system",
    );
  // Traversable (the direct backend's processes connect by path), not listable;
  // this process's own (support/w<pid>), and dead workers' removed.
  const supportRoot = ownWorkerDir(join(config.cacheDir, 'support'));
  const { providers, maxRetries, maxSteps, maxTokens, maxTimeMs } = config.agent;
  const harnesses = new Map<string, Harness>([
    ['command', new CommandHarness()],
    // The server resolves a run's model; this default serves runs that reach the worker without one.
    ['oz', new OzHarness({ providers, maxRetries, defaultModel: workerDefaultModel(config, args.logger) })],
    ['claude', new ClaudeHarness()],
    ['codex', new CodexHarness()],
  ]);
  const tools = agentTools(config);
  return (serverUrl) =>
    new Worker(
      {
        client: new ProtocolClient(serverUrl, args.token),
        backend,
        harnesses,
        logger: args.logger,
        killGraceMs: config.killGraceMs,
        maxOutputBytes: config.maxOutputBytes,
        baseEnv: BASE_ENV,
        mirrors,
        images,
        snapshots,
        publisher,
        supportRoot,
        tools,
        providers,
        destinations: new RemotePolicy({ allowedHosts: config.hostGit.allowedHosts }),
        registries: new RemotePolicy({ allowedHosts: config.registryAllowedHosts, allowedSetting: 'OZ_REGISTRY_ALLOWED_HOSTS' }),
        sandboxDefaults: config.sandboxDefaults,
        agentBudgets: { maxSteps, maxTokens, maxTimeMs },
      },
      {
        concurrency: args.concurrency ?? config.workerConcurrency,
        spareSandboxes: config.spareSandboxes,
        name: config.workerName,
        labels: config.workerLabels,
        version: OZ_VERSION,
        ...(args.idPrefix ? { idPrefix: args.idPrefix } : {}),
      },
      args.logger,
    );
}

/**
 * The worker's fallback model as provider/model. The server resolves every
 * run's model, so a worker box need not have the server's catalog file: a
 * default it cannot resolve is a warning here, not a refusal to start.
 */
function workerDefaultModel(config: WorkerConfig, logger: Logger): string | null {
  try {
    return buildModelCatalog(config).resolve('auto', SETTINGS.defaultModel.env).model;
  } catch (error) {
    logger.warn({ err: error }, 'the default model cannot be resolved on this worker; runs that reach it without a model fail');
    return null;
  }
}
