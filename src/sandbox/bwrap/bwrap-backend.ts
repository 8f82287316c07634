import { RunFailure } from '../../core/run-failure.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { FenceLapsedError, SandboxFence, Watchdog } from '../fence.js';
import { mountsUnder, pidAlive, reap, removeLeftovers, unmount } from '../reap.js';
import { checkOwnDirectory } from '../worker-dirs.js';
import type { ExecOptions, ExecResult, LimitKind, NetworkReport, Sandbox, SandboxBackend, SandboxPhase, SandboxSpec } from '../sandbox-backend.js';
import { bwrapArgs, groupFile, passwdFile, type FdMount, type ImageProfile } from './bwrap-args.js';
import { egressInitArgs, INIT_NODE, OZ_CLI, OZ_WRAPPER, SUPPORT_DIR, TOOLS_DIR } from '../sandbox-layout.js';
import { clearMountPoints, imageRootMounts, mountRunLayers, type RunLayers } from './image-root.js';
import { IMAGE_LIBS, prepareImageNode, type ImageNode } from '../image-node.js';
import { Cgroups, type RunCgroup } from './cgroups.js';
import { DEFAULT_MAX_ENTRIES, diskUsage } from './disk-usage.js';
import { InitClient } from '../init/init-client.js';
import { reachablePath } from './reachable.js';
import { diskMountPoint, ImageDisks, plainDisk, type DiskTools, type RunDisk } from './run-disk.js';
import { seccompFilter } from './seccomp-filter.js';
import { SANDBOX_HOSTS, SLIRP_DNS, SLIRP_RESOLV_CONF, startSlirp, type SlirpNetwork } from './slirp-network.js';
import { addReports, applyEgressRules, nftTools, readNetworkReport, type NftTools } from '../egress-rules.js';
import { SYSTEM_PATH } from '../../core/system-path.js';
import { onPath } from '../host-command.js';

/**
 * Host uids for sandboxes: one at random per run from this range, so no two
 * runs (of this worker or another on the host) share a uid, a workspace owner
 * or an RLIMIT_NPROC count. Below 2^31 for tools that keep uids signed.
 */
const UID_BASE = 1_900_000_000;
const UID_SPAN = 200_000_000;
const WORKSPACE = '/workspace';
const MONITOR_MS = 500;
const START_TIMEOUT_MS = 15_000;

/** Where the built init and harness-support client live in `dist/`. */
const DEFAULT_INIT_SCRIPT = fileURLToPath(new URL('../../in-sandbox/sandbox-init.js', import.meta.url));
const SUPPORT_CLIENT_SCRIPT = fileURLToPath(new URL('../../in-sandbox/harness-support-client.js', import.meta.url));

const CGROUP_PREFIX = 'oz-w';
/** The run directory's image mounts: not the run's data, so the disk walk skips them. */
const IMAGE_MOUNT_NAMES = Object.values(imageRootMounts('/')).map((point) => basename(point));

export class SandboxUnavailableError extends Error {}

/** The host tools of a launch, resolved once (the chain runs with an empty environment). */
interface HostTools {
  bwrap: string;
  prlimit: string;
  env: string;
  setpriv: string | null;
  unshare: string | null;
  /** To unmount the runs' file systems (a root worker's). */
  umount: string;
  /** To mount image roots (overlay) and rewrite the platform node for them; null: images cannot run here. */
  mount: string | null;
  patchelf: string | null;
  disk: DiskTools | null;
  /** nft and nsenter: network `on` refuses internal addresses with them; null: such runs cannot start. */
  nft: NftTools | null;
}

/**
 * bwrap resolves every bind source as the sandbox's uid, so each directory
 * above the sandbox root must be searchable by others; one that is not makes
 * every sandbox fail with an obscure bwrap message. Say which, and the fix.
 */
export function checkAncestorsSearchable(path: string, what = 'the sandbox root', setting = 'OZ_SANDBOX_ROOT'): void {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o001) === 0) {
      throw new SandboxUnavailableError(
        `${what} ${path} is below ${dir} (mode ${mode.toString(8).padStart(4, '0')}), which the sandbox users cannot search: run chmod o+x ${dir}, or set ${setting} to a directory whose parents all have o+x`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}

/** The host uid a crashed worker gave a run (written before anything of the run started), or null. */
function recordedUid(runDir: string): number | null {
  try {
    const uid = Number(readFileSync(join(runDir, 'uid'), 'utf8'));
    return Number.isInteger(uid) && uid >= UID_BASE ? uid : null;
  } catch {
    return null;
  }
}

export interface BwrapBackendOptions {
  /** Where run directories are made (0711: searchable, not listable). Default: under the OS temp dir. */
  root?: string;
  /** The built sandbox init (`dist/in-sandbox/sandbox-init.js`). */
  initScript?: string;
  /** The built fence watchdog (`dist/sandbox/watchdog.js`). */
  watchdogScript?: string;
  /** Where bwrap, setpriv, prlimit, mkfs.ext4 and slirp4netns are found (the worker's `PATH`). */
  hostPath?: string;
  /** Problems the backend recovers from by itself (the watchdog restarted, a leftover it could not remove). */
  onWarning?: (message: string) => void;
}

/**
 * The bubblewrap backend (docs/design.md "Sandboxes"). Run as root, it launches
 * each sandbox as its own unprivileged host uid (a root-launched bwrap maps
 * the sandbox user onto host root), under a cgroup for memory, pids and CPU
 * when the host lets it manage one, on a file system of the run's disk limit
 * where loop devices work, with RLIMIT_NPROC and RLIMIT_FSIZE always, and
 * watched by a fence watchdog (src/sandbox/watchdog.ts) that kills it when
 * its lease is not renewed or its worker dies.
 */
export class BwrapBackend implements SandboxBackend {
  readonly name = 'bwrap';
  readonly isolates = true;
  private readonly root: string;
  private readonly initScript: string;
  private readonly hostPath: string;
  private readonly asRoot = process.getuid?.() === 0;
  private readonly stageDir: string;
  private readonly reachable = new Map<string, string>();
  private readonly warn: (message: string) => void;
  private watchdog: Watchdog | null = null;
  private disks: ImageDisks | null = null;
  private imageNode: ImageNode | null = null;
  /** Why the disk limit is not a file system of its own here (null: it is). */
  private diskFallback: string | null = 'the worker is not root';
  /** Why the probe of an image root (idmapped mount, overlay) failed here, or null. */
  private layersFailure: string | null = null;

  private constructor(
    options: BwrapBackendOptions,
    private readonly cgroups: Cgroups | null,
    private readonly tools: HostTools,
  ) {
    const base = options.root ?? join(tmpdir(), 'oz-sandboxes');
    this.initScript = options.initScript ?? DEFAULT_INIT_SCRIPT;
    this.hostPath = options.hostPath ?? SYSTEM_PATH;
    this.warn = options.onWarning ?? (() => {});
    // Traversable, not listable: bwrap resolves its bind sources as the
    // sandbox's uid, so the path to a workspace must be searchable by it.
    mkdirSync(base, { recursive: true, mode: 0o711 });
    checkOwnDirectory(base);
    chmodSync(base, 0o711);
    if (this.asRoot) checkAncestorsSearchable(base);
    // What crashed workers left: processes (a launch killed mid-start can
    // wait for good), cgroups, mounts, directories.
    for (const name of readdirSync(base)) {
      const pid = /^w(\d+)$/.exec(name)?.[1];
      if (pid && !pidAlive(Number(pid))) this.recover(join(base, name), Number(pid));
    }
    cgroups?.removeStale(CGROUP_PREFIX, pidAlive);
    this.root = join(base, `w${process.pid}`);
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    checkOwnDirectory(this.root);
    chmodSync(this.root, 0o711);
    // Files bound into sandboxes from places their uids cannot reach (see
    // reachablePath): this worker's own, removed with its directory, so a
    // removed checkout's binaries are not kept alive by a link.
    this.stageDir = join(this.root, 'staged');
    mkdirSync(this.stageDir, { mode: 0o711 });
  }

  /** Kill and remove what the dead worker `pid` left in `dir` (its directory under the root). */
  private recover(dir: string, pid: number): void {
    let runs: string[] = [];
    try {
      runs = readdirSync(dir).filter((name) => name.startsWith('run-'));
    } catch {
      // Gone meanwhile (its watchdog removes it too).
    }
    const cgroups = this.cgroups?.find((name) => name.startsWith(`${CGROUP_PREFIX}${pid}-`)) ?? [];
    const uids = runs.map((run) => recordedUid(join(dir, run))).filter((uid): uid is number => uid !== null);
    let dead = reap({ cgroups, launchersHolding: dir });
    for (const uid of uids) dead = reap({ uid }) && dead;
    if (!dead) this.warn(`processes a crashed worker (pid ${pid}) left would not die`);
    const failed = removeLeftovers({ cgroups, mounts: mountsUnder(dir), umount: this.tools.umount, dirs: [dir] });
    if (failed.length > 0) this.warn(`could not remove what a crashed worker (pid ${pid}) left: ${failed.join(', ')}`);
  }

  /**
   * Check the host and start one probe sandbox; throws a
   * {@link SandboxUnavailableError} whose message is the one line to print.
   */
  static async open(options: BwrapBackendOptions = {}): Promise<BwrapBackend> {
    if (process.platform !== 'linux') throw new SandboxUnavailableError('the bwrap backend needs Linux; use --backend direct (no isolation)');
    const path = options.hostPath ?? SYSTEM_PATH;
    const bwrap = onPath('bwrap', path);
    if (!bwrap) {
      throw new SandboxUnavailableError('bubblewrap (bwrap) is not installed: install it (apt-get install bubblewrap) or run with --backend direct (no isolation)');
    }
    const asRoot = process.getuid?.() === 0;
    const found: Record<string, string> = {};
    for (const tool of asRoot ? ['setpriv', 'prlimit', 'env', 'umount', 'unshare'] : ['prlimit', 'env']) {
      const at = onPath(tool, path);
      if (!at) throw new SandboxUnavailableError(`${tool} is not installed: install ${tool === 'env' ? 'coreutils' : 'util-linux'}, or run with --backend direct (no isolation)`);
      found[tool] = at;
    }
    const mkfs = asRoot ? onPath('mkfs.ext4', path) : null;
    const mount = asRoot ? onPath('mount', path) : null;
    const tools: HostTools = {
      bwrap,
      prlimit: found.prlimit as string,
      env: found.env as string,
      setpriv: found.setpriv ?? null,
      unshare: found.unshare ?? null,
      umount: found.umount ?? 'umount',
      mount,
      patchelf: asRoot ? onPath('patchelf', path) : null,
      nft: nftTools(path),
      disk: mkfs && mount && found.umount ? { mkfs, mount, umount: found.umount } : null,
    };
    let backend: BwrapBackend;
    try {
      backend = new BwrapBackend(options, asRoot ? Cgroups.detect() : null, tools);
    } catch (error) {
      if (error instanceof SandboxUnavailableError) throw error;
      throw new SandboxUnavailableError(`the sandbox root cannot be used: ${(error as Error).message}; set OZ_SANDBOX_ROOT to a directory only this user can write`);
    }
    if (!existsSync(backend.initScript)) throw new SandboxUnavailableError(`the sandbox init is missing at ${backend.initScript}: run npm run build`);
    if (asRoot) {
      const why = tools.disk ? await ImageDisks.probe(backend.root, tools.disk) : 'mkfs.ext4 or mount is not installed (e2fsprogs, util-linux)';
      backend.diskFallback = why === null ? null : `no file system per run: ${why}`;
      if (tools.disk && why === null) backend.disks = new ImageDisks(tools.disk);
      if (backend.imagesUnavailable === null) backend.layersFailure = await backend.probeLayers();
    }
    try {
      backend.watchdog = await Watchdog.start({ ...(options.watchdogScript ? { script: options.watchdogScript } : {}), onError: backend.warn });
    } catch (error) {
      backend.close();
      throw new SandboxUnavailableError(`the fence watchdog cannot start (${(error as Error).message}): run npm run build`);
    }
    // If this worker dies, its watchdog removes its directory too.
    backend.watchdog.owns([backend.root]);
    const sandbox = await backend
      .create({ runId: 'probe', network: 'off', limits: { pids: 64, memoryBytes: 256 * 1024 * 1024, diskBytes: 16 * 1024 * 1024 }, mounts: [], onLimit: () => {} })
      .catch((error: Error) => {
        backend.close();
        throw new SandboxUnavailableError(`bubblewrap cannot start a sandbox here (${error.message}); fix the host or run with --backend direct (no isolation)`);
      });
    const probe = await sandbox.exec(['/bin/sh', '-c', 'test "$(id -u)" = 1000'], { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} }).finally(() => sandbox.destroy());
    if (probe.exitCode !== 0) {
      backend.close();
      throw new SandboxUnavailableError('bubblewrap started a sandbox, but not as the sandbox user; run with --backend direct (no isolation)');
    }
    return backend;
  }

  close(): void {
    this.watchdog?.close();
    // A sandbox never destroyed may still have its file system mounted: never remove across a mount.
    for (const point of mountsUnder(this.root)) unmount(point, this.tools.umount);
    if (mountsUnder(this.root).length === 0) rmSync(this.root, { recursive: true, force: true });
  }

  /** Why sandboxes cannot start on an image here, or null when they can. */
  get imagesUnavailable(): string | null {
    if (!this.asRoot) return 'the worker is not root (an image root needs an idmapped mount and an overlay)';
    if (!this.tools.mount || !this.tools.unshare) return 'mount or unshare is not installed (util-linux)';
    if (!this.tools.patchelf) return 'patchelf is not installed (apt-get install patchelf)';
    return this.layersFailure;
  }

  /**
   * An image root and a restored workspace made once, on a tiny tree in the
   * sandbox root, then removed: a kernel or file system without idmapped
   * mounts (before Linux 5.19 for overlay layers) or overlayfs says so here,
   * at start, instead of failing runs later. Null when it works.
   */
  private async probeLayers(): Promise<string | null> {
    const { mount, unshare, umount } = this.tools;
    if (!mount || !unshare) return 'mount or unshare is not installed (util-linux)';
    const dir = mkdtempSync(join(this.root, 'layers-probe-'));
    try {
      mkdirSync(join(dir, 'image', 'etc'), { recursive: true });
      mkdirSync(join(dir, 'saved'), { recursive: true });
      const disk = plainDisk(dir, UID_BASE, true);
      const layers = await mountRunLayers({
        runDir: dir,
        imageRoot: join(dir, 'image'),
        restored: { workspace: join(dir, 'saved'), layer: null },
        disk,
        uid: UID_BASE,
        tools: { mount, umount, unshare },
      });
      const owner = statSync(join(layers.root as string, 'etc')).uid;
      layers.remove();
      return owner === UID_BASE ? null : `an idmapped mount did not map the image's owner here (uid ${owner})`;
    } catch (error) {
      return `idmapped mounts or overlayfs do not work here (${(error as Error).message.split('\n')[0]}); images and warm starts need Linux 5.19 or later`;
    } finally {
      for (const point of mountsUnder(dir)) unmount(point, umount);
      if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    }
  }

  get runsImages(): boolean {
    return this.imagesUnavailable === null;
  }

  /** How limits are enforced here, for the worker's start-up line. */
  get enforcement(): string {
    const cgroup = this.cgroups
      ? `${this.cgroups.description} memory, pids${this.cgroups.cpu ? ' and cpu' : ' (cpu not limited: no cpu controller)'}`
      : 'no cgroups (memory and cpu unlimited; pids by RLIMIT_NPROC)';
    const disk = this.diskFallback === null ? 'disk: an ext4 file system per run (kernel-enforced)' : `disk: measured every 2 s, not kernel-enforced (${this.diskFallback})`;
    return `${this.asRoot ? 'per-run host uid' : 'the worker uid (not root)'}, ${cgroup}, ${disk}, fenced by a watchdog`;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (spec.network === 'on' && !this.asRoot) throw new Error('network "on" needs a worker running as root (it makes the namespace slirp4netns attaches to)');
    if (spec.network === 'on' && !this.tools.nft) throw new Error('network "on" needs nftables (nft) and nsenter on the worker host: they keep the run off internal addresses');
    const { watchdog } = this;
    if (!watchdog) throw new Error('the backend is not open');
    if (spec.fenceAfterMs !== undefined && !(spec.fenceAfterMs >= 0)) throw new Error(`fenceAfterMs: ${spec.fenceAfterMs} is not a duration`);
    const dir = mkdtempSync(join(this.root, `run-${spec.runId}-`));
    const uid = this.asRoot ? UID_BASE + randomInt(UID_SPAN) : (process.getuid?.() ?? 0);
    const id = dir;
    const cgroupName = `${CGROUP_PREFIX}${process.pid}-${spec.runId}-${uid}`;
    const cgroupDirs = this.cgroups?.dirsFor(cgroupName) ?? [];
    const fence = new SandboxFence(spec.fenceAfterMs, { renew: (deadline) => watchdog.renew(id, deadline) });
    const unavailable = spec.image || spec.restore ? this.imagesUnavailable : null;
    if (unavailable) throw new Error(`a sandbox on an image or a snapshot cannot start here: ${unavailable}`);
    const imageMounts = spec.image || spec.restore ? Object.values(imageRootMounts(dir)) : [];
    // Watched before anything exists: what a worker killed mid-start made, its watchdog removes.
    watchdog.arm(
      id,
      { ...(this.asRoot ? { uid } : {}), cgroups: cgroupDirs },
      { cgroups: cgroupDirs, mounts: [...imageMounts, ...(this.disks ? [diskMountPoint(dir)] : [])], umount: this.tools.umount, dirs: [dir] },
      fence.at,
      () => fence.check(),
    );
    let cgroup: RunCgroup | null = null;
    let disk: RunDisk | null = null;
    let layers: RunLayers | null = null;
    try {
      chmodSync(dir, 0o711);
      // And a successor, if the watchdog died too, kills by this uid.
      if (this.asRoot) writeFileSync(join(dir, 'uid'), String(uid), { mode: 0o600 });
      disk = this.disks ? await this.disks.create(dir, uid, spec.limits.diskBytes) : plainDisk(dir, uid, this.asRoot);
      mkdirSync(join(dir, 'etc'), { mode: 0o700 });
      const files: Record<string, string | Buffer> = { passwd: passwdFile(), group: groupFile(), 'resolv.conf': SLIRP_RESOLV_CONF, hosts: SANDBOX_HOSTS, oz: OZ_WRAPPER };
      const filter = seccompFilter();
      if (filter) files.seccomp = filter;
      for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, 'etc', name), content, { mode: 0o600 });
      if (this.cgroups) {
        cgroup = this.cgroups.create(cgroupName, {
          memoryBytes: spec.limits.memoryBytes,
          pids: spec.limits.pids,
          ...(spec.limits.cpus === undefined ? {} : { cpus: spec.limits.cpus }),
        });
      }
      if ((spec.image || spec.restore) && this.tools.mount && this.tools.unshare && this.tools.patchelf) {
        if (spec.image) this.imageNode ??= prepareImageNode(this.stageDir, this.tools.patchelf);
        layers = await mountRunLayers({
          runDir: dir,
          imageRoot: spec.image?.rootDir ?? null,
          restored: spec.restore ?? null,
          disk,
          uid,
          tools: { mount: this.tools.mount, umount: this.tools.umount, unshare: this.tools.unshare },
        });
      }
      const parts: SandboxParts = {
        id,
        dir,
        uid,
        spec,
        cgroup,
        disk,
        layers,
        phase: spec.phase ?? 'platform',
        fence,
        watchdog,
        network: spec.network === 'on',
        nft: this.tools.nft,
        hostPath: this.hostPath,
        seccomp: filter !== null,
      };
      return await BwrapSandbox.start(() => this.launch(parts), parts);
    } catch (error) {
      fence.stop();
      if (cgroup) reap({ cgroups: cgroup.dirs }, 2000);
      cgroup?.remove();
      try {
        layers?.remove();
        await disk?.remove();
        rmSync(dir, { recursive: true, force: true });
        watchdog.disarm(id);
      } catch (cleanup) {
        // Left armed without a deadline: the watchdog removes it when this worker exits.
        watchdog.renew(id, null);
        this.warn(`could not remove ${dir}: ${(cleanup as Error).message}`);
      }
      throw error;
    }
  }

  /** A host file the sandbox's uid can reach (staged once if it is not). Not needed without root: the sandbox is the worker's own uid then. */
  private reach(file: string): string {
    if (!this.asRoot) return file;
    let path = this.reachable.get(file);
    if (!path) {
      path = reachablePath(file, this.stageDir);
      this.reachable.set(file, path);
    }
    return path;
  }

  /** The image half of a launch's profile, when its phase runs on the image. */
  private imageProfile(parts: SandboxParts, place: (fd: number) => number, open: (path: string) => number): ImageProfile | null {
    const user = phaseProfile(parts, parts.phase);
    const node = this.imageNode;
    const root = parts.layers?.root;
    if (!user || !root || !node) return null;
    clearMountPoints(root);
    return {
      rootFd: place(open(root)),
      ...user,
      loaderFd: place(open(node.loader)),
      libs: node.libs.map((lib) => ({ fd: place(open(lib.path)), dest: `${IMAGE_LIBS}/${lib.name}` })),
    };
  }

  /** Start bwrap (and its init) on a prepared run directory; again on a restart. */
  private launch(parts: SandboxParts): ChildProcess {
    const { dir, uid, spec, cgroup, network, disk } = parts;
    const { tools } = this;
    // Without it bwrap would run in the host's network namespace.
    if (network && !tools.unshare) throw new Error('network "on" needs unshare (util-linux)');
    // A worker frozen between asking for a sandbox and launching it must not start one after its
    // lease is gone (the watchdog would kill it at once; better it never exists).
    if (parts.fence.lapsed()) throw new FenceLapsedError();
    const fds: number[] = [];
    const open = (path: string): number => {
      const fd = openSync(path, 'r');
      fds.push(fd);
      return fd;
    };
    try {
      // stdio 0-2: the init's requests, replies and diagnostics; 3: bwrap's --info-fd.
      const stdio: (number | 'pipe')[] = ['pipe', 'pipe', 'pipe', 'pipe'];
      const place = (fd: number): number => stdio.push(fd) - 1;
      const etc = (name: string): number => place(open(join(dir, 'etc', name)));
      const readOnly: FdMount[] = spec.mounts.map((path, i) => ({ fd: place(open(path)), dest: `/oz/mirrors/${i}` }));
      if (spec.supportDir) readOnly.push({ fd: place(open(spec.supportDir)), dest: SUPPORT_DIR });
      for (const tool of spec.tools ?? []) readOnly.push({ fd: place(open(this.reach(tool.path))), dest: `${TOOLS_DIR}/${tool.name}` });
      const image = this.imageProfile(parts, place, open);
      const args = bwrapArgs({
        network,
        ...(image ? { image } : {}),
        // On an image its own /etc/passwd stays: an fd placed and not consumed by bwrap would be inherited by every process.
        passwdFd: image ? -1 : etc('passwd'),
        groupFd: image ? -1 : etc('group'),
        ...(network ? { resolvFd: etc('resolv.conf'), hostsFd: etc('hosts') } : {}),
        ...(parts.seccomp ? { seccompFd: etc('seccomp') } : {}),
        initScriptFd: place(open(this.initScript)),
        ...(spec.network === 'allowlist' && spec.supportDir ? { initArgs: egressInitArgs() } : {}),
        ...(spec.supportDir && existsSync(SUPPORT_CLIENT_SCRIPT) ? { supportClientFd: place(open(SUPPORT_CLIENT_SCRIPT)), ozWrapperFd: etc('oz') } : {}),
        nodeFd: place(open(image && this.imageNode ? this.imageNode.binary : this.reach(process.execPath))),
        infoFd: 3,
        workspaceFd: place(open(parts.layers?.workspace ?? disk.workspace)),
        tmpFd: place(open(disk.tmp)),
        readOnly,
      });
      // RLIMIT_NPROC counts the run's host uid: the limit itself without a
      // cgroup, a backstop above it with one (so the cgroup, which reports
      // hitting it, acts first).
      const nproc = this.cgroups ? spec.limits.pids * 2 : spec.limits.pids;
      const limits = [tools.prlimit, `--fsize=${spec.limits.diskBytes}`, '--core=0', ...(this.asRoot ? [`--nproc=${nproc}`] : []), '--'];
      const user =
        this.asRoot && tools.setpriv ? [tools.setpriv, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--'] : [];
      // The launcher joins the run's cgroups (the files before `--`) before
      // anything forks, then execs the chain (same pid), by absolute paths
      // with an empty environment: bwrap, the namespace's pid 1, keeps the
      // environ it was started with, and the sandbox can read it
      // (/proc/1/environ): env -i → [unshare --net] → prlimit → setpriv → bwrap.
      const argv = [
        '/bin/sh',
        '-c',
        'while [ "$1" != -- ]; do echo $$ > "$1" || exit 111; shift; done; shift; exec "$@"',
        'oz-sandbox',
        ...(cgroup?.procsFiles ?? []),
        '--',
        tools.env,
        '-i',
        ...(network && tools.unshare ? [tools.unshare, '--net', '--'] : []),
        ...limits,
        ...user,
        tools.bwrap,
        ...args,
      ];
      return spawn(argv[0] as string, argv.slice(1), { stdio, env: {}, cwd: '/' });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }
}

/** What a launch in `phase` runs on: the image (and as whom), or the host's system. */
function phaseProfile(parts: SandboxParts, phase: SandboxPhase): { uid: number; gid: number } | null {
  const image = parts.spec.image;
  if (!image || !parts.layers?.root || phase === 'platform') return null;
  return phase === 'setup' ? { uid: 0, gid: 0 } : { uid: image.agentUid, gid: image.agentGid };
}

interface SandboxParts {
  /** The sandbox's name with the watchdog. */
  id: string;
  dir: string;
  uid: number;
  spec: SandboxSpec;
  cgroup: RunCgroup | null;
  disk: RunDisk;
  /** The run's overlays (its image root, its workspace on a snapshot), when it has any. */
  layers: RunLayers | null;
  /** The phase the next launch starts in. */
  phase: SandboxPhase;
  fence: SandboxFence;
  watchdog: Watchdog;
  network: boolean;
  nft: NftTools | null;
  hostPath: string;
  seccomp: boolean;
}

/** One launch of bwrap on a run directory: the process chain, its init and its network. */
class Jail {
  readonly init: InitClient;
  readonly exited: Promise<void>;
  namespacePid = 0;
  slirp: SlirpNetwork | null = null;
  stderr = '';

  constructor(
    readonly child: ChildProcess,
    private readonly parts: SandboxParts,
  ) {
    // The launcher (then bwrap, same pid) is the watchdog's to kill too.
    parts.watchdog.addProcess(parts.id, child.pid);
    this.init = new InitClient(child.stdin as Writable, child.stdout as Readable, () => this.kill());
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    child.once('error', (error) => this.init.close(error));
  }

  async boot(): Promise<void> {
    const { parts } = this;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the sandbox did not start in time')), START_TIMEOUT_MS);
    });
    try {
      this.namespacePid = await Promise.race([readInfo(this.child.stdio[3] as Readable), timeout]);
      parts.watchdog.addProcess(parts.id, this.namespacePid);
      if (parts.network) {
        // The rules before the interface: until slirp4netns configures it the namespace has no way out.
        await applyEgressRules(parts.nft as NftTools, this.namespacePid, { allowRanges: parts.spec.internalRanges ?? [], dnsServers: [SLIRP_DNS] });
        this.slirp = await startSlirp(this.namespacePid, parts.hostPath);
      }
      await Promise.race([this.init.ready, timeout]);
    } catch (error) {
      const detail = this.stderr.trim().split('\n').at(-1);
      throw new Error(detail ? `${(error as Error).message}: ${detail}` : (error as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL to the namespace's pid 1: the kernel then kills every process in it. */
  kill(): void {
    if (this.namespacePid > 0 && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(this.namespacePid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  async stop(reason: string | Error): Promise<void> {
    this.init.close(typeof reason === 'string' ? RunFailure.sandboxLost(reason) : reason);
    this.kill();
    this.child.stdin?.end();
    const killed = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(killed);
    this.slirp?.stop();
  }
}

class BwrapSandbox implements Sandbox {
  readonly workspacePath = WORKSPACE;
  readonly mountPaths: readonly string[];
  readonly supportSocketPath: string | null;
  readonly supportDirPath: string | null;
  readonly ozCliPath: string | null;
  readonly toolPaths: Readonly<Record<string, string>>;
  readonly nodePath = INIT_NODE;
  private monitor: NodeJS.Timeout | null = null;
  private hit: LimitKind | null = null;
  private destroyed: Promise<void> | null = null;
  private ticks = 0;
  private earlierNetwork: NetworkReport | null = null;

  private constructor(
    private jail: Jail,
    private readonly launch: () => ChildProcess,
    private readonly parts: SandboxParts,
  ) {
    this.mountPaths = parts.spec.mounts.map((_, i) => `/oz/mirrors/${i}`);
    this.supportSocketPath = parts.spec.supportDir ? `${SUPPORT_DIR}/sock` : null;
    this.supportDirPath = parts.spec.supportDir ? SUPPORT_DIR : null;
    this.ozCliPath = parts.spec.supportDir && existsSync(SUPPORT_CLIENT_SCRIPT) ? OZ_CLI : null;
    this.toolPaths = Object.fromEntries((parts.spec.tools ?? []).map((tool) => [tool.name, `${TOOLS_DIR}/${tool.name}`]));
    // At the deadline the worker ends the sandbox itself when it runs (and
    // the watchdog does, whether it runs or not).
    parts.fence.onLapse = () => {
      this.jail.init.close(new FenceLapsedError());
      this.jail.kill();
    };
  }

  static async start(launch: () => ChildProcess, parts: SandboxParts): Promise<BwrapSandbox> {
    const sandbox = new BwrapSandbox(new Jail(launch(), parts), launch, parts);
    try {
      await sandbox.jail.boot();
    } catch (error) {
      await sandbox.destroy();
      throw error;
    }
    sandbox.monitor = setInterval(() => void sandbox.check(), MONITOR_MS);
    sandbox.monitor.unref();
    return sandbox;
  }

  private async check(): Promise<void> {
    if (this.hit) return;
    const { cgroup, spec, dir, disk } = this.parts;
    let kind: LimitKind | null = null;
    if (cgroup && cgroup.oomKills() > 0) kind = 'memory';
    else if (cgroup && cgroup.pidsRefused() > 0) kind = 'pids';
    // A file system of its own: full is over the limit (statfs, every tick). Else the walk, every 2 s.
    else if (
      disk.mountPoint
        ? disk.full()
        : ++this.ticks % 4 === 0 && (await diskUsage(dir, { stopAboveBytes: spec.limits.diskBytes, maxEntries: DEFAULT_MAX_ENTRIES, skipTop: IMAGE_MOUNT_NAMES })).truncated
    )
      kind = 'disk';
    if (kind && !this.hit && !this.destroyed) {
      this.hit = kind;
      this.jail.kill();
      spec.onLimit(kind);
    }
  }

  async limitHit(): Promise<LimitKind | null> {
    const { cgroup, disk } = this.parts;
    if (!this.hit && cgroup && cgroup.oomKills() > 0) this.hit = 'memory';
    if (!this.hit && cgroup && cgroup.pidsRefused() > 0) this.hit = 'pids';
    if (!this.hit && !this.destroyed && disk.full()) this.hit = 'disk';
    return this.hit;
  }

  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    const cwd = options.cwd ? posix.resolve(WORKSPACE, options.cwd) : WORKSPACE;
    return this.parts.fence.guard(() => this.jail.init.exec(argv, cwd, options));
  }

  async writeFile(relativePath: string, content: string): Promise<string> {
    // Through the init, as the sandbox user: the host never writes into a
    // workspace whose symlinks the agent controls.
    const path = posix.resolve(WORKSPACE, relativePath);
    await this.parts.fence.guard(() => this.jail.init.write(path, content, 0o600));
    return path;
  }

  stateDirs(): { workspace: string; layer: string | null } | null {
    const { disk, layers, spec } = this.parts;
    if (spec.restore) return null;
    return { workspace: disk.workspace, layer: layers?.root ? join(disk.layer, 'upper') : null };
  }

  async enter(phase: SandboxPhase, whileStopped?: () => Promise<void>): Promise<boolean> {
    const { parts } = this;
    const now = phaseProfile(parts, parts.phase);
    const next = phaseProfile(parts, phase);
    parts.phase = phase;
    if (!whileStopped && now?.uid === next?.uid && now?.gid === next?.gid && (now === null) === (next === null)) return false;
    await this.restart(whileStopped);
    return true;
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (signal === 'SIGKILL') this.jail.kill();
    else this.jail.init.signal(signal);
  }

  renewFence(validForMs: number): void {
    this.parts.fence.renew(validForMs);
  }

  async quiet(): Promise<void> {
    // The init's kill(-1): every process of the sandbox user in the namespace but the init itself and bubblewrap's reaper.
    // A process of another uid (setup as root on an image) is out of its reach: a phase other than the platform's restarts instead.
    if (phaseProfile(this.parts, this.parts.phase) !== null) return this.restart();
    this.jail.init.signal('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  /**
   * A new jail on the same run directory: the old namespace is killed whole
   * (its init included, which held every environment it was sent), then
   * bwrap starts again. The workspace and /tmp stay.
   */
  async networkReport(): Promise<NetworkReport | null> {
    const { network, nft } = this.parts;
    if (!network || !nft || this.jail.namespacePid === 0) return this.earlierNetwork;
    return addReports(this.earlierNetwork, await readNetworkReport(nft, this.jail.namespacePid).catch(() => null));
  }

  async restart(whileStopped?: () => Promise<void>): Promise<void> {
    if (this.destroyed) throw new Error('the sandbox was destroyed');
    if (this.parts.fence.lapsed()) throw new FenceLapsedError();
    // The next launch has a namespace of its own: what this one's saw is kept.
    if (this.parts.network) this.earlierNetwork = await this.networkReport();
    await this.jail.stop('the sandbox is restarting');
    // Nothing of the run runs now: not even an init (on an image, one the image's files could subvert).
    if (whileStopped) await whileStopped();
    if (this.destroyed) throw new Error('the sandbox was destroyed');
    if (this.parts.fence.lapsed()) throw new FenceLapsedError();
    this.jail = new Jail(this.launch(), this.parts);
    try {
      await this.jail.boot();
    } catch (error) {
      // The run's sandbox is lost (the run ends ERROR sandbox_lost, retryable).
      throw RunFailure.sandboxLost(`it could not restart (${(error as Error).message})`, error);
    }
  }

  destroy(): Promise<void> {
    this.destroyed ??= this.teardown();
    return this.destroyed;
  }

  private async teardown(): Promise<void> {
    if (this.monitor) clearInterval(this.monitor);
    const { cgroup, dir, disk, fence, watchdog, id } = this.parts;
    fence.stop();
    await this.jail.stop('the sandbox was destroyed');
    for (let attempt = 0; cgroup && attempt < 20; attempt++) {
      cgroup.remove();
      if (!existsSync(cgroup.procsFiles[0] as string)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      // Every process of the sandbox is dead, so nothing can swap the tree under us.
      this.parts.layers?.remove();
      await disk.remove();
      rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      // Left for the watchdog, when this worker exits, and for a successor.
      watchdog.renew(id, null);
      throw error;
    }
    watchdog.disarm(id);
  }
}

/** bwrap's --info-fd JSON: the host pid of the namespace's pid 1. */
function readInfo(stream: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      try {
        const pid = (JSON.parse(text) as { 'child-pid'?: number })['child-pid'];
        if (typeof pid === 'number') {
          stream.off('data', onData);
          resolve(pid);
        }
      } catch {
        // Not all of it yet.
      }
    };
    stream.on('data', onData);
    stream.once('end', () => reject(new Error('bubblewrap exited before the sandbox started')));
  });
}

/** For tests and the benchmark: is bwrap usable here at all? */
export function bwrapInstalled(): boolean {
  return process.platform === 'linux' && spawnSync('bwrap', ['--version']).status === 0;
}
