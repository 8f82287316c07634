import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { ExecOptions, ExecResult, LimitKind, Sandbox, SandboxBackend, SandboxSpec } from '../sandbox-backend.js';
import { bwrapArgs, groupFile, INIT_NODE, OZ_WRAPPER, passwdFile, SUPPORT_DIR, TOOLS_DIR, type FdMount } from './bwrap-args.js';
import { Cgroups, type RunCgroup } from './cgroups.js';
import { DEFAULT_MAX_ENTRIES, diskUsage } from './disk-usage.js';
import { InitClient } from './init-client.js';
import { reachablePath } from './reachable.js';
import { seccompFilter } from './seccomp-filter.js';
import { SANDBOX_HOSTS, SLIRP_RESOLV_CONF, startSlirp, type SlirpNetwork } from './slirp-network.js';

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
const DEFAULT_INIT_SCRIPT = fileURLToPath(new URL('./sandbox-init.js', import.meta.url));
const SUPPORT_CLIENT_SCRIPT = fileURLToPath(new URL('../../harness-support/client.js', import.meta.url));

const CGROUP_PREFIX = 'oz-w';
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class SandboxUnavailableError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function onPath(command: string, path: string): boolean {
  return path.split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

/**
 * The sandbox root sits by default in the shared temp dir: make sure it is
 * this process's own directory, not a symlink or a directory another user
 * made (or can write) to redirect or swap the run directories.
 */
function checkOwnDirectory(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink() || !stat.isDirectory()) throw new Error(`${path} is not a directory`);
  if (stat.uid !== process.getuid?.()) throw new Error(`${path} belongs to uid ${stat.uid}, not to this user`);
  if ((stat.mode & 0o022) !== 0) throw new Error(`${path} is writable by group or others`);
}

export interface BwrapBackendOptions {
  /** Where run directories are made (0711: searchable, not listable). Default: under the OS temp dir. */
  root?: string;
  /** The built sandbox init (`dist/sandbox/bwrap/sandbox-init.js`). */
  initScript?: string;
  /** Where bwrap, setpriv, prlimit and slirp4netns are found (the worker's `PATH`). */
  hostPath?: string;
}

/**
 * The bubblewrap backend (DESIGN.md "Sandboxes"). Run as root, it launches
 * each sandbox as its own unprivileged host uid (a root-launched bwrap maps
 * the sandbox user onto host root), under a cgroup for memory and pids when
 * the host lets it manage one, with RLIMIT_NPROC and RLIMIT_FSIZE always.
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

  private constructor(
    options: BwrapBackendOptions,
    private readonly cgroups: Cgroups | null,
  ) {
    const base = options.root ?? join(tmpdir(), 'oz-sandboxes');
    this.initScript = options.initScript ?? DEFAULT_INIT_SCRIPT;
    this.hostPath = options.hostPath ?? SYSTEM_PATH;
    // Traversable, not listable: bwrap resolves its bind sources as the
    // sandbox's uid, so the path to a workspace must be searchable by it.
    mkdirSync(base, { recursive: true, mode: 0o711 });
    checkOwnDirectory(base);
    chmodSync(base, 0o711);
    // What a crashed worker left (its sandboxes died with it: --die-with-parent).
    for (const name of readdirSync(base)) {
      const pid = /^w(\d+)$/.exec(name)?.[1];
      if (pid && !alive(Number(pid))) rmSync(join(base, name), { recursive: true, force: true });
    }
    cgroups?.removeStale(CGROUP_PREFIX, alive);
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

  /**
   * Check the host and start one probe sandbox; throws a
   * {@link SandboxUnavailableError} whose message is the one line to print.
   */
  static async open(options: BwrapBackendOptions = {}): Promise<BwrapBackend> {
    if (process.platform !== 'linux') throw new SandboxUnavailableError('the bwrap backend needs Linux; use --backend direct (no isolation)');
    const path = options.hostPath ?? SYSTEM_PATH;
    if (!onPath('bwrap', path)) {
      throw new SandboxUnavailableError('bubblewrap (bwrap) is not installed: install it (apt-get install bubblewrap) or run with --backend direct (no isolation)');
    }
    const asRoot = process.getuid?.() === 0;
    for (const tool of asRoot ? ['setpriv', 'prlimit'] : ['prlimit']) {
      if (!onPath(tool, path)) throw new SandboxUnavailableError(`${tool} is not installed: install util-linux, or run with --backend direct (no isolation)`);
    }
    let backend: BwrapBackend;
    try {
      backend = new BwrapBackend(options, asRoot ? Cgroups.detect() : null);
    } catch (error) {
      throw new SandboxUnavailableError(`the sandbox root cannot be used: ${(error as Error).message}; set OZ_SANDBOX_ROOT to a directory only this user can write`);
    }
    if (!existsSync(backend.initScript)) throw new SandboxUnavailableError(`the sandbox init is missing at ${backend.initScript}: run npm run build`);
    const sandbox = await backend
      .create({ runId: 'probe', network: 'off', limits: { pids: 64, memoryBytes: 256 * 1024 * 1024, diskBytes: 16 * 1024 * 1024 }, mounts: [], onLimit: () => {} })
      .catch((error: Error) => {
        throw new SandboxUnavailableError(`bubblewrap cannot start a sandbox here (${error.message}); fix the host or run with --backend direct (no isolation)`);
      });
    const probe = await sandbox.exec(['/bin/sh', '-c', 'test "$(id -u)" = 1000'], { env: { PATH: '/usr/bin:/bin' }, onOutput: () => {} }).finally(() => sandbox.destroy());
    if (probe.exitCode !== 0) throw new SandboxUnavailableError('bubblewrap started a sandbox, but not as the sandbox user; run with --backend direct (no isolation)');
    return backend;
  }

  close(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  /** How limits are enforced here, for the worker's start-up line. */
  get enforcement(): string {
    const cgroup = this.cgroups ? `${this.cgroups.description} memory and pids` : 'no cgroups (memory unlimited; pids by RLIMIT_NPROC)';
    return `${this.asRoot ? 'per-run host uid' : 'the worker uid (not root)'}, ${cgroup}`;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (spec.network === 'on' && !this.asRoot) throw new Error('network "on" needs a worker running as root (it makes the namespace slirp4netns attaches to)');
    const dir = mkdtempSync(join(this.root, `run-${spec.runId}-`));
    const uid = this.asRoot ? UID_BASE + randomInt(UID_SPAN) : (process.getuid?.() ?? 0);
    let cgroup: RunCgroup | null = null;
    try {
      chmodSync(dir, 0o711);
      for (const sub of ['workspace', 'tmp']) {
        mkdirSync(join(dir, sub), { mode: 0o700 });
        if (this.asRoot) chownSync(join(dir, sub), uid, uid);
      }
      mkdirSync(join(dir, 'etc'), { mode: 0o700 });
      const files: Record<string, string | Buffer> = { passwd: passwdFile(), group: groupFile(), 'resolv.conf': SLIRP_RESOLV_CONF, hosts: SANDBOX_HOSTS, oz: OZ_WRAPPER };
      const filter = seccompFilter();
      if (filter) files.seccomp = filter;
      for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, 'etc', name), content, { mode: 0o600 });
      if (this.cgroups) cgroup = this.cgroups.create(`${CGROUP_PREFIX}${process.pid}-${spec.runId}-${uid}`, { memoryBytes: spec.limits.memoryBytes, pids: spec.limits.pids });
      const parts: SandboxParts = { dir, uid, spec, cgroup, network: spec.network === 'on', hostPath: this.hostPath, seccomp: filter !== null };
      return await BwrapSandbox.start(() => this.launch(parts), parts);
    } catch (error) {
      cgroup?.remove();
      rmSync(dir, { recursive: true, force: true });
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

  /** Start bwrap (and its init) on a prepared run directory; again on a restart. */
  private launch(parts: SandboxParts): ChildProcess {
    const { dir, uid, spec, cgroup, network } = parts;
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
      const args = bwrapArgs({
        network,
        passwdFd: etc('passwd'),
        groupFd: etc('group'),
        ...(network ? { resolvFd: etc('resolv.conf'), hostsFd: etc('hosts') } : {}),
        ...(parts.seccomp ? { seccompFd: etc('seccomp') } : {}),
        initScriptFd: place(open(this.initScript)),
        ...(spec.supportDir && existsSync(SUPPORT_CLIENT_SCRIPT) ? { supportClientFd: place(open(SUPPORT_CLIENT_SCRIPT)), ozWrapperFd: etc('oz') } : {}),
        nodeFd: place(open(this.reach(process.execPath))),
        infoFd: 3,
        workspaceFd: place(open(join(dir, 'workspace'))),
        tmpFd: place(open(join(dir, 'tmp'))),
        readOnly,
      });
      // RLIMIT_NPROC counts the run's host uid: the limit itself without a
      // cgroup, a backstop above it with one (so the cgroup, which reports
      // hitting it, acts first).
      const nproc = this.cgroups ? spec.limits.pids * 2 : spec.limits.pids;
      const limits = ['prlimit', `--fsize=${spec.limits.diskBytes}`, '--core=0', ...(this.asRoot ? [`--nproc=${nproc}`] : []), '--'];
      const user = this.asRoot ? ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--'] : [];
      // The launcher joins the run's cgroup before anything forks, then execs
      // the chain (same pid): [unshare --net] → prlimit → setpriv → bwrap.
      const argv = [
        '/bin/sh',
        '-c',
        'for f in $OZ_CGROUP_PROCS; do echo $$ > "$f" || exit 111; done; exec "$@"',
        'oz-sandbox',
        ...(network ? ['unshare', '--net', '--'] : []),
        ...limits,
        ...user,
        'bwrap',
        ...args,
      ];
      return spawn(argv[0] as string, argv.slice(1), {
        stdio,
        env: { PATH: this.hostPath, OZ_CGROUP_PROCS: cgroup?.procsFiles.join(' ') ?? '' },
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }
}

interface SandboxParts {
  dir: string;
  uid: number;
  spec: SandboxSpec;
  cgroup: RunCgroup | null;
  network: boolean;
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

  constructor(readonly child: ChildProcess) {
    this.init = new InitClient(child.stdin as Writable, child.stdout as Readable, () => this.kill());
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    child.once('error', (error) => this.init.close(error));
  }

  async boot(parts: SandboxParts): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the sandbox did not start in time')), START_TIMEOUT_MS);
    });
    try {
      this.namespacePid = await Promise.race([readInfo(this.child.stdio[3] as Readable), timeout]);
      if (parts.network) this.slirp = await startSlirp(this.namespacePid, parts.hostPath);
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

  async stop(reason: string): Promise<void> {
    this.init.close(new Error(reason));
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
  readonly toolPaths: Readonly<Record<string, string>>;
  readonly nodePath = INIT_NODE;
  private monitor: NodeJS.Timeout | null = null;
  private hit: LimitKind | null = null;
  private destroyed: Promise<void> | null = null;
  private ticks = 0;

  private constructor(
    private jail: Jail,
    private readonly launch: () => ChildProcess,
    private readonly parts: SandboxParts,
  ) {
    this.mountPaths = parts.spec.mounts.map((_, i) => `/oz/mirrors/${i}`);
    this.supportSocketPath = parts.spec.supportDir ? `${SUPPORT_DIR}/sock` : null;
    this.supportDirPath = parts.spec.supportDir ? SUPPORT_DIR : null;
    this.toolPaths = Object.fromEntries((parts.spec.tools ?? []).map((tool) => [tool.name, `${TOOLS_DIR}/${tool.name}`]));
  }

  static async start(launch: () => ChildProcess, parts: SandboxParts): Promise<BwrapSandbox> {
    const sandbox = new BwrapSandbox(new Jail(launch()), launch, parts);
    try {
      await sandbox.jail.boot(parts);
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
    const { cgroup, spec, dir } = this.parts;
    let kind: LimitKind | null = null;
    if (cgroup && cgroup.oomKills() > 0) kind = 'memory';
    else if (cgroup && cgroup.pidsRefused() > 0) kind = 'pids';
    else if (++this.ticks % 4 === 0 && (await diskUsage(dir, { stopAboveBytes: spec.limits.diskBytes, maxEntries: DEFAULT_MAX_ENTRIES })).truncated) kind = 'disk';
    if (kind && !this.hit && !this.destroyed) {
      this.hit = kind;
      this.jail.kill();
      spec.onLimit(kind);
    }
  }

  async limitHit(): Promise<LimitKind | null> {
    const { cgroup } = this.parts;
    if (!this.hit && cgroup && cgroup.oomKills() > 0) this.hit = 'memory';
    if (!this.hit && cgroup && cgroup.pidsRefused() > 0) this.hit = 'pids';
    return this.hit;
  }

  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    const cwd = options.cwd ? posix.resolve(WORKSPACE, options.cwd) : WORKSPACE;
    return this.jail.init.exec(argv, cwd, options);
  }

  async writeFile(relativePath: string, content: string): Promise<string> {
    // Through the init, as the sandbox user: the host never writes into a
    // workspace whose symlinks the agent controls.
    const path = posix.resolve(WORKSPACE, relativePath);
    await this.jail.init.write(path, content, 0o600);
    return path;
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (signal === 'SIGKILL') this.jail.kill();
    else this.jail.init.signal(signal);
  }

  /**
   * A new jail on the same run directory: the old namespace is killed whole
   * (its init included, which held every environment it was sent), then
   * bwrap starts again. The workspace and /tmp stay.
   */
  async restart(): Promise<void> {
    if (this.destroyed) throw new Error('the sandbox was destroyed');
    await this.jail.stop('the sandbox is restarting');
    this.jail = new Jail(this.launch());
    try {
      await this.jail.boot(this.parts);
    } catch (error) {
      // The run's sandbox is lost (the run ends ERROR sandbox_lost, retryable).
      throw new Error(`the sandbox is gone: it could not restart (${(error as Error).message})`);
    }
  }

  destroy(): Promise<void> {
    this.destroyed ??= this.teardown();
    return this.destroyed;
  }

  private async teardown(): Promise<void> {
    if (this.monitor) clearInterval(this.monitor);
    await this.jail.stop('the sandbox was destroyed');
    const { cgroup, dir } = this.parts;
    for (let attempt = 0; cgroup && attempt < 20; attempt++) {
      cgroup.remove();
      if (!existsSync(cgroup.procsFiles[0] as string)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Every process of the sandbox is dead, so nothing can swap the tree under us.
    rmSync(dir, { recursive: true, force: true });
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
