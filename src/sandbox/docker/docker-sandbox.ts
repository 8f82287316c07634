import { rmSync, statfsSync } from 'node:fs';
import { posix } from 'node:path';
import { RunFailure } from '../../core/run-failure.js';
import { DEFAULT_MAX_ENTRIES, diskUsage } from '../bwrap/disk-usage.js';
import type { RunDisk } from '../bwrap/run-disk.js';
import { FenceLapsedError, type SandboxFence, type Watchdog } from '../fence.js';
import type { ExecOptions, ExecResult, LimitKind, NetworkReport, Sandbox, SandboxPhase, SandboxSpec } from '../sandbox-backend.js';
import { addReports, applyEgressRules, readNetworkReport, type NftTools } from '../egress-rules.js';
import { egressInitArgs, INIT_NODE, MIRRORS_DIR, OZ_CLI, SUPPORT_DIR, TOOLS_DIR, WORKSPACE } from '../sandbox-layout.js';
import { ContainerHandle } from './container-handle.js';

const MONITOR_MS = 500;

/** The two containers a run may have and who runs in each phase. */
export interface SandboxContainers {
  /** On the base image with the host's system: the platform's steps of a run on an image, every phase of one without. */
  platform: ContainerHandle | null;
  /** On the environment's image: setup (as root) and the harness (as the image's user). */
  image: ContainerHandle | null;
  /** The in-container user of each phase, `uid:gid`. */
  users: Record<SandboxPhase, string>;
}

export interface DockerSandboxParts {
  id: string;
  dir: string;
  spec: SandboxSpec;
  disk: RunDisk;
  containers: SandboxContainers;
  fence: SandboxFence;
  watchdog: Watchdog;
  hasSupportClient: boolean;
  phase: SandboxPhase;
  /** The uid:gid that owns the workspace (the harness's). */
  owner: string;
  warn: (message: string) => void;
  /** Remove what the backend made for the run (containers, disk, directory). */
  teardown: () => Promise<void>;
  /** Under network `on`: how the rules that refuse internal addresses are loaded into each container's namespace. */
  nft: NftTools | null;
  /**
   * Whether the engine's resolver answers at the network's gateway (Podman's aardvark-dns), which then
   * gets port 53 under `on`; Docker's answers at 127.0.0.11, the container's own loopback. Taken from
   * the engine, never from the container's resolv.conf (an earlier phase could have written it).
   */
  resolverAtGateway: boolean;
}

/**
 * A run's sandbox on the docker backend: one or two containers sharing the
 * run's workspace and /tmp, and the platform's sandbox init (the same program
 * and line protocol as in a bwrap sandbox) started in the phase's container
 * as the phase's user by an exec; a restart kills the container whole (its
 * pid 1, then the kernel everything else) and starts it again: the
 * container's own layer (what setup installed) stays.
 */
export class DockerSandbox implements Sandbox {
  readonly workspacePath = WORKSPACE;
  readonly mountPaths: readonly string[];
  readonly supportSocketPath: string | null;
  readonly supportDirPath: string | null;
  readonly ozCliPath: string | null;
  readonly toolPaths: Readonly<Record<string, string>>;
  readonly nodePath = INIT_NODE;
  private current: ContainerHandle | null = null;
  private monitor: NodeJS.Timeout | null = null;
  private hit: LimitKind | null = null;
  private destroyed: Promise<void> | null = null;
  private ticks = 0;
  /** The container main process whose namespace has the `on` rules, per container. */
  private readonly ruled = new Map<ContainerHandle, number>();
  private earlierNetwork: NetworkReport | null = null;

  private constructor(private readonly parts: DockerSandboxParts) {
    const { spec } = parts;
    this.mountPaths = spec.mounts.map((_, i) => `${MIRRORS_DIR}/${i}`);
    this.supportSocketPath = spec.supportDir ? `${SUPPORT_DIR}/sock` : null;
    this.supportDirPath = spec.supportDir ? SUPPORT_DIR : null;
    this.ozCliPath = spec.supportDir && parts.hasSupportClient ? OZ_CLI : null;
    this.toolPaths = Object.fromEntries((spec.tools ?? []).map((tool) => [tool.name, `${TOOLS_DIR}/${tool.name}`]));
    parts.fence.onLapse = () => {
      this.current?.failInit(new FenceLapsedError());
      for (const handle of this.handles()) void handle.kill();
    };
  }

  static async start(parts: DockerSandboxParts): Promise<DockerSandbox> {
    const sandbox = new DockerSandbox(parts);
    try {
      await sandbox.launch();
    } catch (error) {
      await sandbox.destroy();
      throw error;
    }
    sandbox.monitor = setInterval(() => void sandbox.check(), MONITOR_MS);
    sandbox.monitor.unref();
    return sandbox;
  }

  private handles(): ContainerHandle[] {
    const { platform, image } = this.parts.containers;
    return [platform, image].filter((handle): handle is ContainerHandle => handle !== null);
  }

  /** The container of `phase`. */
  private containerOf(phase: SandboxPhase): ContainerHandle {
    const { platform, image } = this.parts.containers;
    const handle = phase === 'platform' ? (platform ?? image) : (image ?? platform);
    if (!handle) throw new Error('the sandbox has no container');
    return handle;
  }

  /** Start the current phase's container (if it is not running) and an init in it. */
  private async launch(): Promise<void> {
    const { parts } = this;
    if (parts.fence.lapsed()) throw new FenceLapsedError();
    const handle = this.containerOf(parts.phase);
    const pid = await handle.ensureRunning();
    parts.watchdog.addProcess(parts.id, pid);
    if (parts.spec.network === 'on' && this.ruled.get(handle) !== pid) {
      // A container that (re)started has a namespace without them; nothing of the run runs in it yet.
      if (!parts.nft) throw new Error('network "on" needs nftables (nft) and nsenter on the worker host: they keep the run off internal addresses');
      await applyEgressRules(parts.nft, pid, { allowRanges: parts.spec.internalRanges ?? [], dnsServers: parts.resolverAtGateway ? handle.gateways : [] });
      this.ruled.set(handle, pid);
    }
    await handle.startInit(parts.containers.users[parts.phase], () => void handle.kill(), parts.spec.network === 'allowlist' && parts.spec.supportDir ? egressInitArgs() : []);
    this.current = handle;
  }

  private async check(): Promise<void> {
    if (this.hit || this.destroyed) return;
    const { spec, disk, dir } = this.parts;
    let kind: LimitKind | null = null;
    for (const handle of this.handles()) {
      if (handle.oomKills() > 0) kind = 'memory';
      else if (handle.pidsRefused() > 0) kind ??= 'pids';
    }
    if (!kind && (disk.mountPoint ? disk.full() : false)) kind = 'disk';
    // Every 2 s, against the one limit: the run's file system as the kernel counts it (else a walk of its
    // directory), plus a walk of the image container's own layer. A walk cut short counts as over.
    if (!kind && ++this.ticks % 4 === 0) {
      let used = disk.mountPoint ? fileSystemUsed(disk.mountPoint) : 0;
      let over = false;
      for (const path of [disk.mountPoint ? null : dir, this.parts.containers.image?.upperDir ?? null]) {
        if (!path || over) continue;
        const usage = await diskUsage(path, { stopAboveBytes: Math.max(0, spec.limits.diskBytes - used), maxEntries: DEFAULT_MAX_ENTRIES });
        used += usage.bytes;
        over = usage.truncated;
      }
      if (over || used >= spec.limits.diskBytes) kind = 'disk';
    }
    if (kind && !this.hit && !this.destroyed) {
      this.hit = kind;
      for (const handle of this.handles()) void handle.kill();
      spec.onLimit(kind);
    }
  }

  async limitHit(): Promise<LimitKind | null> {
    for (const handle of this.handles()) {
      if (!this.hit && handle.oomKills() > 0) this.hit = 'memory';
      if (!this.hit && handle.pidsRefused() > 0) this.hit = 'pids';
    }
    if (!this.hit && !this.destroyed && this.parts.disk.full()) this.hit = 'disk';
    // A container whose init or pid 1 the kernel killed for memory is stopped, and its cgroup gone with its counters.
    for (const handle of this.handles()) if (!this.hit && !this.destroyed && (await handle.oomKilled())) this.hit = 'memory';
    return this.hit;
  }

  private get init(): ContainerHandle {
    if (!this.current) throw RunFailure.sandboxLost('it is not running');
    return this.current;
  }

  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    const cwd = options.cwd ? posix.resolve(WORKSPACE, options.cwd) : WORKSPACE;
    return this.parts.fence.guard(() => this.init.client().exec(argv, cwd, options));
  }

  async writeFile(relativePath: string, content: string): Promise<string> {
    // Through the init, as the phase's user: the host never writes into a workspace whose symlinks the agent controls.
    const path = posix.resolve(WORKSPACE, relativePath);
    await this.parts.fence.guard(() => this.init.client().write(path, content, 0o600));
    return path;
  }

  stateDirs(): { workspace: string; layer: string | null; keepOwners?: boolean } | null {
    const { spec, disk, containers } = this.parts;
    // A warm start's state is its snapshot's already; on an image whose layer the engine does not show, there is none to keep.
    if (spec.restore || (containers.image && !containers.image.upperDir)) return null;
    // Owners kept: the container's uids are the host's (no idmapped restore maps them back, as on bwrap).
    return { workspace: disk.workspace, layer: containers.image?.upperDir ?? null, keepOwners: true };
  }

  async enter(phase: SandboxPhase, whileStopped?: () => Promise<void>): Promise<boolean> {
    const { parts } = this;
    const before = parts.phase;
    const same = this.containerOf(before) === this.containerOf(phase) && parts.containers.users[before] === parts.containers.users[phase];
    if (!whileStopped && same) {
      parts.phase = phase;
      return false;
    }
    // What setup (root in the image) left in the workspace becomes the harness's, as on bwrap, where both are one host uid.
    if (before === 'setup' && phase === 'agent' && parts.containers.users.setup !== parts.owner) await this.handOver();
    parts.phase = phase;
    await this.restart(whileStopped);
    return true;
  }

  /** `chown -R` of the workspace and /tmp to the harness's user, inside the setup container (never from the host). */
  private async handOver(): Promise<void> {
    const [uid, gid] = this.parts.owner.split(':').map(Number);
    const script = `const fs=require('fs'),p=require('path');const walk=(d)=>{for(const e of fs.readdirSync(d,{withFileTypes:true})){const f=p.join(d,e.name);fs.lchownSync(f,${uid},${gid});if(e.isDirectory())walk(f)}};for(const r of ['${WORKSPACE}','/tmp']){fs.lchownSync(r,${uid},${gid});walk(r)}`;
    let output = '';
    const result = await this.exec([INIT_NODE, '-e', script], { env: { PATH: '/usr/bin:/bin' }, onOutput: (_stream, chunk) => (output = (output + chunk.toString()).slice(-500)) });
    if (result.exitCode !== 0) this.parts.warn(`could not hand the workspace over to the harness's user: ${output.trim()}`);
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (signal === 'SIGKILL') for (const handle of this.handles()) void handle.kill();
    else this.current?.signalInit(signal);
  }

  renewFence(validForMs: number): void {
    this.parts.fence.renew(validForMs);
  }

  async networkReport(): Promise<NetworkReport | null> {
    const { nft } = this.parts;
    let report = this.earlierNetwork;
    if (!nft) return report;
    for (const pid of this.ruled.values()) report = addReports(report, await readNetworkReport(nft, pid).catch(() => null));
    return report;
  }

  async restart(whileStopped?: () => Promise<void>): Promise<void> {
    if (this.destroyed) throw new Error('the sandbox was destroyed');
    if (this.parts.fence.lapsed()) throw new FenceLapsedError();
    // Restarted containers have namespaces of their own: what these saw is kept.
    if (this.ruled.size > 0) {
      this.earlierNetwork = await this.networkReport();
      this.ruled.clear();
    }
    this.current = null;
    for (const handle of this.handles()) await handle.stop('the sandbox is restarting');
    if (whileStopped) await whileStopped();
    if (this.destroyed) throw new Error('the sandbox was destroyed');
    try {
      await this.launch();
    } catch (error) {
      if (error instanceof FenceLapsedError) throw error;
      this.parts.warn(`a sandbox could not restart: ${(error as Error).message}`);
      throw RunFailure.sandboxLost("it could not restart (the worker log has the engine's reason)", error);
    }
  }

  destroy(): Promise<void> {
    this.destroyed ??= this.teardown();
    return this.destroyed;
  }

  private async teardown(): Promise<void> {
    if (this.monitor) clearInterval(this.monitor);
    const { fence, watchdog, id, dir, disk } = this.parts;
    fence.stop();
    this.current = null;
    try {
      await this.parts.teardown();
      await disk.remove();
      rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      // Left for the watchdog, when this worker exits, and for a successor (by the containers' labels).
      watchdog.renew(id, null);
      throw error;
    }
    watchdog.disarm(id);
  }
}

/** Bytes in use on a file system (as the kernel counts them: deleted but open files too). */
function fileSystemUsed(mountPoint: string): number {
  try {
    const stat = statfsSync(mountPoint);
    return (stat.blocks - stat.bfree) * stat.bsize;
  } catch {
    return 0;
  }
}
