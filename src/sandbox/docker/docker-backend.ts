import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { SYSTEM_PATH } from '../../core/system-path.js';
import { isLoopbackHost } from '../../core/loopback-host.js';
import { ImageDisks, plainDisk, diskMountPoint, type RunDisk } from '../bwrap/run-disk.js';
import { FenceLapsedError, SandboxFence, Watchdog } from '../fence.js';
import { prepareImageNode, IMAGE_LIBS, IMAGE_LOADER, type ImageNode } from '../image-node.js';
import { mountsUnder, pidAlive, processStart, removeLeftovers, unmount } from '../reap.js';
import { checkOwnDirectory } from '../worker-dirs.js';
import type { Sandbox, SandboxBackend, SandboxPhase, SandboxSpec } from '../sandbox-backend.js';
import { INIT_NODE, INIT_SCRIPT, MIRRORS_DIR, OZ_CLI, OZ_WRAPPER, SUPPORT_CLIENT, SUPPORT_DIR, TOOLS_DIR, WORKSPACE } from '../sandbox-layout.js';
import { ensureBaseImage } from './base-image.js';
import { ensureSandboxNetwork, removeNetwork } from './sandbox-network.js';
import { ContainerHandle } from './container-handle.js';
import { containerOptions, hostSystemBinds, hostLimits, LABELS, type Bind } from './container-config.js';
import { DockerSandbox } from './docker-sandbox.js';
import { EngineImages } from './engine-images.js';
import { seccompProfile } from './seccomp-profile.js';
import { onPath } from '../host-command.js';
import { nftTools, type NftTools } from '../egress-rules.js';

/** This worker process as its containers' labels name it: pid, start time, pid namespace. */
const WORKER = {
  start: processStart(process.pid) ?? 0,
  pidNamespace: (() => {
    try {
      return readlinkSync('/proc/self/ns/pid').replace(/[^a-z0-9]/gi, '');
    } catch {
      return 'unknown';
    }
  })(),
};

/** Host uids for runs without an image, as on the bwrap backend: one at random per run, never a host user's. */
const UID_BASE = 1_900_000_000;
const UID_SPAN = 200_000_000;
const DEFAULT_INIT_SCRIPT = fileURLToPath(new URL('../../in-sandbox/sandbox-init.js', import.meta.url));
const SUPPORT_CLIENT_SCRIPT = fileURLToPath(new URL('../../in-sandbox/harness-support-client.js', import.meta.url));
/** What an image container's processes may need as root (setup installing packages): the engine's default set, less the network and kernel ones. */
const SETUP_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETUID', 'SETGID'];

export class DockerUnavailableError extends Error {}

export interface DockerBackendOptions {
  /** Where run directories are made (the workspace and /tmp bound into containers). Default: under the OS temp dir. */
  root?: string;
  initScript?: string;
  watchdogScript?: string;
  /** Where patchelf, mkfs.ext4 and mount are found. */
  hostPath?: string;
  /** The engine; default: `DOCKER_HOST`, else the default socket (Docker's, or Podman's API service at the same path). */
  docker?: Docker;
  /** Put on every container (`dev.oz.worker`), for the operator. */
  workerName?: string;
  onWarning?: (message: string) => void;
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

function passwdFor(uid: number, gid: number): string {
  return [
    'root:x:0:0:root:/root:/usr/sbin/nologin',
    `agent:x:${uid}:${gid}:Oz agent:${WORKSPACE}:/bin/bash`,
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    '',
  ].join('\n');
}

function groupFor(gid: number): string {
  return ['root:x:0:', `agent:x:${gid}:`, 'nogroup:x:65534:', ''].join('\n');
}

const copy = promisify(execFile);
const COPY_TIMEOUT_MS = 10 * 60_000;

/**
 * A warm start: the saved workspace copied into the run's (then the harness's
 * user's, as the bwrap backend's idmapped restore shows it) and the saved
 * layer into the image container's own layer, before any process of the run
 * exists (so nothing can race the host's copy and chown).
 */
async function restoreState(
  saved: { workspace: string; layer: string | null },
  into: { workspace: string; uid: number; gid: number; image: ContainerHandle | null },
): Promise<void> {
  const options = { env: { PATH: '/usr/bin:/bin' }, maxBuffer: 1024 * 1024, timeout: COPY_TIMEOUT_MS };
  await copy('cp', ['-a', `${saved.workspace}/.`, `${into.workspace}/`], options);
  await copy('chown', ['-R', '-h', `${into.uid}:${into.gid}`, into.workspace], options);
  if (saved.layer && into.image) {
    const upper = await into.image.writableLayer();
    if (!upper) throw new Error("the engine does not say where the container's layer is (a warm start on an image needs the overlay2 storage driver)");
    await copy('cp', ['-a', `${saved.layer}/.`, `${upper}/`], options);
  }
}

/**
 * The container backend (docs/sandboxes.md "The docker backend"): each run
 * in a container of the environment's image (or of a tiny base image with the
 * host's system bound read-only), through the Docker Engine API, which
 * Docker and Podman's API service both speak. The worker keeps the run's
 * workspace and /tmp on the host, watched by the same fence watchdog as
 * bwrap sandboxes; containers carry labels naming this host and worker
 * process, so the next worker removes what a crashed one left.
 */
export class DockerBackend implements SandboxBackend {
  readonly name = 'docker';
  readonly isolates = true;
  readonly runsImages = true;
  readonly images: EngineImages;
  private readonly base: string;
  private readonly root: string;
  private readonly stageDir: string;
  private readonly initScript: string;
  private readonly warn: (message: string) => void;
  private readonly asRoot = process.getuid?.() === 0;
  private watchdog: Watchdog | null = null;
  private disks: ImageDisks | null = null;
  private imageNode: ImageNode | null = null;
  private baseImage = '';
  /** The network of runs with network `on` (Docker: one without traffic between its containers); null: the engine's default. */
  private networkName: string | null = null;
  /** Podman's networks have no switch for traffic between their containers: each run with network gets one of its own. */
  private networkPerRun = false;
  private engine = '';
  /** The `seccomp=` value containers are created with. */
  private seccomp = seccompProfile();
  private readonly hostLimits = hostLimits(readFileSync('/proc/self/limits', 'utf8'));
  private diskFallback: string | null = 'the worker is not root';

  private constructor(
    private readonly docker: Docker,
    private readonly options: DockerBackendOptions,
    private readonly tools: { reaper: string; patchelf: string | null; umount: string; disk: { mkfs: string; mount: string; umount: string } | null; nft: NftTools | null },
  ) {
    this.initScript = options.initScript ?? DEFAULT_INIT_SCRIPT;
    this.warn = options.onWarning ?? (() => {});
    this.base = options.root ?? join(tmpdir(), 'oz-containers');
    mkdirSync(this.base, { recursive: true, mode: 0o711 });
    // Root's own, never a symlink or a directory another user made or can write: its run
    // directories are bound into containers and chowned, so a swapped path would be the host's.
    checkOwnDirectory(this.base);
    chmodSync(this.base, 0o711);
    this.root = join(this.base, `w${process.pid}`);
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    checkOwnDirectory(this.root);
    chmodSync(this.root, 0o711);
    this.stageDir = join(this.root, 'staged');
    mkdirSync(this.stageDir, { mode: 0o711 });
    this.images = new EngineImages(docker, this.workerLabels());
  }

  /** The labels that name this worker process on everything it makes in the engine. */
  private workerLabels(): Record<string, string> {
    return {
      [LABELS.sandbox]: 'true',
      [LABELS.host]: hostname(),
      [LABELS.workerPid]: String(process.pid),
      [LABELS.workerStart]: String(WORKER.start),
      [LABELS.pidNamespace]: WORKER.pidNamespace,
      ...(this.options.workerName ? { [LABELS.worker]: this.options.workerName } : {}),
    };
  }

  /** Reach the engine, remove what crashed workers left, make the base image; throws a {@link DockerUnavailableError} whose message is the line to print. */
  static async open(options: DockerBackendOptions = {}): Promise<DockerBackend> {
    if (process.platform !== 'linux') throw new DockerUnavailableError('the docker backend needs Linux (it binds the workspace from this host)');
    const docker = options.docker ?? new Docker();
    let version: Docker.DockerVersion;
    try {
      version = await docker.version();
    } catch (error) {
      throw new DockerUnavailableError(
        `the container engine cannot be reached (${(error as Error).message}): start dockerd, or Podman's API service (podman system service), and set DOCKER_HOST if its socket is not the default`,
      );
    }
    const path = options.hostPath ?? SYSTEM_PATH;
    const asRoot = process.getuid?.() === 0;
    const mkfs = asRoot ? onPath('mkfs.ext4', path) : null;
    const mount = asRoot ? onPath('mount', path) : null;
    const umount = onPath('umount', path) ?? 'umount';
    const reaper = ['tini-static', 'docker-init', 'catatonit'].map((name) => onPath(name, path)).find((found) => found !== null) ?? null;
    if (!reaper) throw new DockerUnavailableError("no static init (tini) is installed for the containers' pid 1: apt-get install tini (docker.io brings it)");
    const podman = (version.Components ?? []).some((component) => /podman/i.test(component.Name));
    const endpoint = docker.modem as { host?: string; socketPath?: unknown; ca?: unknown };
    // An engine API on the network without TLS would answer a run's container on the bridge: root on the host.
    if (!endpoint.socketPath && endpoint.host && !isLoopbackHost(endpoint.host) && !endpoint.ca) {
      throw new DockerUnavailableError(
        `DOCKER_HOST names ${endpoint.host} without TLS: a run with network could reach the engine's API there; use its unix socket, a loopback address, or TLS (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)`,
      );
    }
    // The workspace belongs to the run's uid on the host; under remapping the container's uids are others.
    const info = (await docker.info().catch(() => ({}))) as { SecurityOptions?: string[] };
    if ((info.SecurityOptions ?? []).some((option) => option.includes('name=userns'))) {
      throw new DockerUnavailableError(
        'the engine remaps user namespaces (userns-remap), which the docker backend does not support yet: run the worker against an engine without it, or use --backend bwrap (each run its own unprivileged uid)',
      );
    }
    let backend: DockerBackend;
    try {
      backend = new DockerBackend(docker, options, {
        reaper: realpathSync(reaper),
        patchelf: onPath('patchelf', path),
        nft: nftTools(path),
        umount,
        disk: mkfs && mount ? { mkfs, mount, umount } : null,
      });
    } catch (error) {
      throw new DockerUnavailableError(`the sandbox root cannot be used: ${(error as Error).message}; set OZ_SANDBOX_ROOT to a directory only this user can write`);
    }
    backend.engine = `${podman ? 'Podman' : 'Docker'} ${version.Version} (API ${version.ApiVersion})`;
    if (podman) {
      // Podman's compatible API reads the profile from a path on its host (this one: it binds this host's paths too).
      const file = join(backend.root, 'seccomp.json');
      writeFileSync(file, backend.seccomp, { mode: 0o644 });
      backend.seccomp = file;
    }
    if (!existsSync(backend.initScript)) {
      backend.close();
      throw new DockerUnavailableError(`the sandbox init is missing at ${backend.initScript}: run npm run build`);
    }
    try {
      // Containers first: a dead worker's may still run, writing in the directories removed next.
      await backend.removeCrashedContainers();
      await backend.removeCrashedNetworks();
      backend.removeCrashedDirectories();
      backend.baseImage = await ensureBaseImage(docker);
      backend.networkPerRun = podman;
      backend.networkName = podman ? null : await ensureSandboxNetwork(docker);
    } catch (error) {
      backend.close();
      throw new DockerUnavailableError(`the container engine refused the base image or the clean-up (${(error as Error).message})`);
    }
    if (asRoot && backend.tools.disk) {
      const why = await ImageDisks.probe(backend.root, backend.tools.disk);
      backend.diskFallback = why === null ? null : `no file system per run: ${why}`;
      if (why === null) backend.disks = new ImageDisks(backend.tools.disk);
    }
    try {
      backend.watchdog = await Watchdog.start({ ...(options.watchdogScript ? { script: options.watchdogScript } : {}), onError: backend.warn });
    } catch (error) {
      backend.close();
      throw new DockerUnavailableError(`the fence watchdog cannot start (${(error as Error).message}): run npm run build`);
    }
    backend.watchdog.owns([backend.root]);
    return backend;
  }

  /** Containers of this host and pid namespace whose worker process (pid and start time) is gone: a crashed worker's. */
  private async removeCrashedContainers(): Promise<void> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.sandbox}=true`, `${LABELS.host}=${hostname()}`, `${LABELS.pidNamespace}=${WORKER.pidNamespace}`] },
    });
    for (const info of containers) {
      const pid = Number(info.Labels[LABELS.workerPid]);
      const started = Number(info.Labels[LABELS.workerStart]);
      // Alive: the same pid with the same start time (a reused pid is another process).
      if (Number.isInteger(pid) && pid > 0 && processStart(pid) === started) continue;
      await this.docker
        .getContainer(info.Id)
        .remove({ force: true, v: true })
        .catch((error: Error) => this.warn(`could not remove container ${info.Names[0] ?? info.Id} a crashed worker left: ${error.message}`));
    }
  }

  /** The per-run networks (Podman) of workers that are gone, after their containers. */
  private async removeCrashedNetworks(): Promise<void> {
    const networks = await this.docker.listNetworks({
      filters: { label: [`${LABELS.sandbox}=true`, `${LABELS.host}=${hostname()}`, `${LABELS.pidNamespace}=${WORKER.pidNamespace}`] },
    });
    for (const info of networks) {
      const labels = info.Labels ?? {};
      const pid = Number(labels[LABELS.workerPid]);
      if (Number.isInteger(pid) && pid > 0 && processStart(pid) === Number(labels[LABELS.workerStart])) continue;
      await removeNetwork(this.docker, info.Name, this.warn);
    }
  }

  /** Dead workers' run directories (after their containers are gone). */
  private removeCrashedDirectories(): void {
    for (const name of readdirSync(this.base)) {
      const pid = /^w(\d+)$/.exec(name)?.[1];
      if (!pid || Number(pid) === process.pid || pidAlive(Number(pid))) continue;
      const dir = join(this.base, name);
      const failed = removeLeftovers({ mounts: mountsUnder(dir), umount: this.tools.umount, dirs: [dir] });
      if (failed.length > 0) this.warn(`could not remove what a crashed worker (pid ${pid}) left: ${failed.join(', ')}`);
    }
  }

  /** How limits are enforced here, for the worker's start-up line. */
  get enforcement(): string {
    const disk = this.diskFallback === null ? 'disk: an ext4 file system per run for the workspace' : `disk: measured every 2 s (${this.diskFallback})`;
    return `${this.engine}: capabilities dropped, no-new-privileges, a seccomp profile, memory/pids/cpu limits, ${disk}, fenced by a watchdog`;
  }

  close(): void {
    this.watchdog?.close();
    for (const point of mountsUnder(this.root)) unmount(point, this.tools.umount);
    if (mountsUnder(this.root).length === 0) rmSync(this.root, { recursive: true, force: true });
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    const { watchdog } = this;
    if (!watchdog) throw new Error('the backend is not open');
    if (spec.image && !spec.image.engineImage) throw new Error('the docker backend starts images the engine pulled (SandboxImage.engineImage)');
    if (spec.fenceAfterMs !== undefined && !(spec.fenceAfterMs >= 0)) throw new Error(`fenceAfterMs: ${spec.fenceAfterMs} is not a duration`);
    const dir = mkdtempSync(join(this.root, `run-${spec.runId}-`));
    const id = dir;
    // On an image the harness is the image's user (the engine maps no uid: it is the host's too); else a uid of its own.
    const uid = spec.image ? spec.image.agentUid : this.asRoot ? UID_BASE + randomInt(UID_SPAN) : (process.getuid?.() ?? 0);
    const gid = spec.image ? spec.image.agentGid : this.asRoot ? uid : (process.getgid?.() ?? 0);
    const fence = new SandboxFence(spec.fenceAfterMs, { renew: (deadline) => watchdog.renew(id, deadline) });
    // Watched before anything exists. The containers' processes are added once they run; the run's own uid (never a host user's) as a backstop.
    watchdog.arm(id, spec.image || !this.asRoot ? {} : { uid }, { mounts: this.disks ? [diskMountPoint(dir)] : [], umount: this.tools.umount, dirs: [dir] }, fence.at, () =>
      fence.check(),
    );
    const handles: ContainerHandle[] = [];
    let disk: RunDisk | null = null;
    let ownNetwork: string | null = null;
    const teardown = async (): Promise<void> => {
      for (const handle of handles) await handle.remove();
      if (ownNetwork) await removeNetwork(this.docker, ownNetwork, this.warn);
    };
    try {
      chmodSync(dir, 0o711);
      disk = this.disks ? await this.disks.create(dir, uid, spec.limits.diskBytes) : plainDisk(dir, uid, this.asRoot);
      if (this.asRoot && gid !== uid) for (const path of [disk.workspace, disk.tmp]) chownSync(path, uid, gid);
      mkdirSync(join(dir, 'etc'), { mode: 0o755 });
      writeFileSync(join(dir, 'etc', 'passwd'), passwdFor(uid, gid), { mode: 0o644 });
      writeFileSync(join(dir, 'etc', 'group'), groupFor(gid), { mode: 0o644 });
      writeFileSync(join(dir, 'etc', 'oz'), OZ_WRAPPER, { mode: 0o555 });
      const hasSupportClient = Boolean(spec.supportDir) && existsSync(SUPPORT_CLIENT_SCRIPT);
      const common: Bind[] = [
        { source: disk.workspace, target: WORKSPACE, readOnly: false },
        { source: disk.tmp, target: '/tmp', readOnly: false },
        { source: realpathSync(this.initScript), target: INIT_SCRIPT, readOnly: true },
        ...spec.mounts.map((path, i) => ({ source: path, target: `${MIRRORS_DIR}/${i}`, readOnly: true })),
        ...(spec.supportDir ? [{ source: spec.supportDir, target: SUPPORT_DIR, readOnly: true }] : []),
        ...(hasSupportClient
          ? [
              { source: SUPPORT_CLIENT_SCRIPT, target: SUPPORT_CLIENT, readOnly: true },
              { source: join(dir, 'etc', 'oz'), target: OZ_CLI, readOnly: true },
            ]
          : []),
        ...(spec.tools ?? []).map((tool) => ({ source: realpathSync(tool.path), target: `${TOOLS_DIR}/${tool.name}`, readOnly: true })),
      ];
      const labels = { ...this.workerLabels(), [LABELS.run]: spec.runId };
      const network = spec.network === 'on';
      const suffix = `${spec.runId.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 60)}-${randomInt(1e9).toString(36)}`;
      const initEnv = [`PATH=/usr/local/bin:/usr/bin:/bin`, `HOME=${WORKSPACE}`, 'OPENSSL_CONF=/dev/null'];
      if (network && this.networkPerRun) {
        ownNetwork = `oz-${suffix}`;
        await this.docker.createNetwork({ Name: ownNetwork, Driver: 'bridge', Labels: { ...labels, [LABELS.role]: 'network' } });
      }
      const networkName = ownNetwork ?? this.networkName;
      const user = `${uid}:${gid}`;
      // The platform's container: the base image and the host's system, as the run's user (every phase without an image).
      const platformOptions = containerOptions(
        {
          name: `oz-${suffix}-platform`,
          image: this.baseImage,
          role: 'platform',
          reaper: this.tools.reaper,
          seccomp: this.seccomp,
          hostLimits: this.hostLimits,
          user,
          network,
          limits: spec.limits,
          labels: { ...labels, [LABELS.role]: 'platform' },
          readOnlyRoot: true,
          ...(networkName ? { networkName } : {}),
          binds: [
            ...hostSystemBinds(existsSync, isDirectory),
            { source: join(dir, 'etc', 'passwd'), target: '/etc/passwd', readOnly: true },
            { source: join(dir, 'etc', 'group'), target: '/etc/group', readOnly: true },
            { source: realpathSync(process.execPath), target: INIT_NODE, readOnly: true },
            ...common,
          ],
        },
        INIT_NODE,
      );
      const platform = new ContainerHandle(this.docker, await this.docker.createContainer(platformOptions), initEnv);
      handles.push(platform);
      let image: ContainerHandle | null = null;
      if (spec.image?.engineImage) {
        if (!this.tools.patchelf) throw new Error('patchelf is not installed (apt-get install patchelf): the platform node cannot run on an image without it');
        this.imageNode ??= prepareImageNode(this.stageDir, this.tools.patchelf);
        // The image's VOLUMEs: directories on the run's own disk (counted, removed with it), not anonymous volumes.
        const declared = Object.keys((await this.docker.getImage(spec.image.engineImage).inspect()).Config?.Volumes ?? {});
        const volumes: Bind[] = declared.map((target, i) => {
          const source = join(disk!.layer, `volume-${i}`);
          mkdirSync(source, { mode: 0o755 });
          chownSync(source, uid, gid);
          return { source, target, readOnly: false };
        });
        const node = this.imageNode;
        const imageOptions = containerOptions(
          {
            name: `oz-${suffix}-image`,
            image: spec.image.engineImage,
            role: 'image',
            reaper: this.tools.reaper,
            seccomp: this.seccomp,
            hostLimits: this.hostLimits,
            // The engine gives an exec as root the container's capabilities only when its main process is root too
            // (an exec as the agent's uid gets none either way).
            user: '0:0',
            network,
            limits: spec.limits,
            labels: { ...labels, [LABELS.role]: 'image' },
            readOnlyRoot: false,
            ...(networkName ? { networkName } : {}),
            binds: [
              ...volumes,
              { source: node.binary, target: INIT_NODE, readOnly: true },
              { source: node.loader, target: IMAGE_LOADER, readOnly: true },
              ...node.libs.map((lib) => ({ source: lib.path, target: `${IMAGE_LIBS}/${lib.name}`, readOnly: true })),
              ...common,
            ],
          },
          INIT_NODE,
        );
        imageOptions.HostConfig = { ...imageOptions.HostConfig, CapAdd: SETUP_CAPABILITIES };
        image = new ContainerHandle(this.docker, await this.docker.createContainer(imageOptions), initEnv);
        handles.push(image);
      }
      if (spec.restore) await restoreState(spec.restore, { workspace: disk.workspace, uid, gid, image });
      const users: Record<SandboxPhase, string> = { platform: user, setup: image ? '0:0' : user, agent: user };
      return await DockerSandbox.start({
        id,
        dir,
        spec,
        disk,
        containers: { platform, image, users },
        nft: this.tools.nft,
        resolverAtGateway: this.networkPerRun,
        fence,
        watchdog,
        hasSupportClient,
        phase: spec.phase ?? 'platform',
        owner: user,
        warn: this.warn,
        teardown,
      });
    } catch (error) {
      fence.stop();
      try {
        await teardown();
        await disk?.remove();
        rmSync(dir, { recursive: true, force: true });
        watchdog.disarm(id);
      } catch (cleanup) {
        watchdog.renew(id, null);
        this.warn(`could not remove ${dir}: ${(cleanup as Error).message}`);
      }
      if (error instanceof FenceLapsedError) throw error;
      // The engine's words name host paths and its own internals: the worker's log has them, the run a plain reason.
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== undefined) {
        this.warn(`the container engine could not start run ${spec.runId}'s sandbox: ${(error as Error).message}`);
        throw new Error(`the container engine refused to start it (HTTP ${status}; the worker log has its reason)`);
      }
      throw error;
    }
  }
}
