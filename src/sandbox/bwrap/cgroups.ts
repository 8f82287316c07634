import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Per-run memory, pids and CPU limits through the kernel's cgroups, v1 (one
 * hierarchy per controller) or v2 (unified, when the worker's own cgroup
 * delegates `memory` and `pids` to its children; `cpu` where it can be
 * delegated too). Written by hand: no maintained Node library manages
 * cgroups, and what we need is a handful of file writes.
 */
export interface RunCgroup {
  /** `cgroup.procs` files a process joins by writing its pid into each. */
  readonly procsFiles: readonly string[];
  /** The run's cgroup directories, one per hierarchy. */
  readonly dirs: readonly string[];
  /** Processes the kernel killed for the memory limit so far. */
  oomKills(): number;
  /** Forks refused for the pids limit so far. */
  pidsRefused(): number;
  remove(): void;
}

export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  /** Cores (fractional); absent: unlimited. */
  cpus?: number;
}

interface Layout {
  version: 1 | 2;
  /** v1: the worker's own cgroup directory per controller; v2: one directory. */
  memory: string;
  pids: string;
  /** Null: no cpu controller to use (a CPU limit is not enforced). */
  cpu: string | null;
}

/** The CFS period a CPU quota is a share of (the kernel's default). */
const CPU_PERIOD_US = 100_000;
/** The smallest quota the kernel accepts. */
const CPU_MIN_QUOTA_US = 1_000;

/** `cpus` cores as a quota of CPU_PERIOD_US. */
export function cpuQuotaUs(cpus: number): number {
  return Math.max(CPU_MIN_QUOTA_US, Math.round(cpus * CPU_PERIOD_US));
}

function readNumberField(file: string, field: string): number {
  try {
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field} `));
    return line ? Number(line.split(' ')[1]) : 0;
  } catch {
    return 0;
  }
}

/** Mount points of cgroup hierarchies, by controller ('' for the v2 unified one). */
function mounts(): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4] ?? '';
    const [fsType, , superOptions = ''] = right.split(' ');
    if (fsType === 'cgroup2') found.set('', mountPoint);
    if (fsType === 'cgroup') for (const option of superOptions.split(',')) found.set(option, mountPoint);
  }
  return found;
}

/** The worker's own cgroup path per controller ('' for v2). */
function ownPaths(): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    for (const controller of controllers.split(',')) found.set(controller, path);
  }
  return found;
}

/** Write a control file the kernel may not offer; skip it if absent or refused. */
function writeOptional(file: string, value: string): void {
  try {
    writeFileSync(file, value); // cgroupfs never lets a missing control file be created.
  } catch {
    // Not offered here (e.g. no swap accounting).
  }
}

function writable(dir: string): boolean {
  const probe = join(dir, `oz-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

function detect(): Layout | null {
  let mountMap: Map<string, string>;
  let own: Map<string, string>;
  try {
    mountMap = mounts();
    own = ownPaths();
  } catch {
    return null;
  }
  const memoryMount = mountMap.get('memory');
  const pidsMount = mountMap.get('pids');
  if (memoryMount && pidsMount) {
    const memory = join(memoryMount, own.get('memory') ?? '/');
    const pids = join(pidsMount, own.get('pids') ?? '/');
    const cpuMount = mountMap.get('cpu');
    const cpuDir = cpuMount ? join(cpuMount, own.get('cpu') ?? '/') : null;
    const cpu = cpuDir && existsSync(join(cpuDir, 'cpu.cfs_quota_us')) && writable(cpuDir) ? cpuDir : null;
    if (writable(memory) && writable(pids)) return { version: 1, memory, pids, cpu };
  }
  const unified = mountMap.get('');
  if (unified) {
    const dir = join(unified, own.get('') ?? '/');
    try {
      const subtree = join(dir, 'cgroup.subtree_control');
      const delegated = (): string[] => readFileSync(subtree, 'utf8').split(/\s+/);
      if (delegated().includes('memory') && delegated().includes('pids') && writable(dir)) {
        // Like memory and pids, cpu must be enabled for the children; try if it is offered.
        if (!delegated().includes('cpu') && readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) writeOptional(subtree, '+cpu');
        return { version: 2, memory: dir, pids: dir, cpu: delegated().includes('cpu') ? dir : null };
      }
    } catch {
      // Not delegated.
    }
  }
  return null;
}

export class Cgroups {
  private constructor(private readonly layout: Layout) {}

  /** The cgroups this worker can manage, or null (limits then fall back to rlimits). */
  static detect(): Cgroups | null {
    const layout = detect();
    return layout ? new Cgroups(layout) : null;
  }

  get description(): string {
    return `cgroup v${this.layout.version}`;
  }

  /** Whether a CPU limit can be enforced. */
  get cpu(): boolean {
    return this.layout.cpu !== null;
  }

  /** The cgroup directories (in every hierarchy) whose name passes `test`. */
  find(test: (name: string) => boolean): string[] {
    const found: string[] = [];
    for (const parent of this.parents()) {
      try {
        found.push(
          ...readdirSync(parent)
            .filter(test)
            .map((name) => join(parent, name)),
        );
      } catch {
        // Not readable.
      }
    }
    return found;
  }

  private parents(): string[] {
    const { memory, pids, cpu } = this.layout;
    return [...new Set([memory, pids, ...(cpu ? [cpu] : [])])];
  }

  /** Remove the empty cgroups named `<prefix><pid>-…` whose worker `pid` is dead (a crashed worker's). */
  removeStale(prefix: string, alive: (pid: number) => boolean): void {
    this.removeWhere((name) => {
      const pid = name.startsWith(prefix) ? Number.parseInt(name.slice(prefix.length), 10) : NaN;
      return Number.isInteger(pid) && !alive(pid);
    });
  }

  /** Remove the empty cgroups whose name passes `test`. */
  removeWhere(test: (name: string) => boolean): void {
    for (const parent of this.parents()) {
      let names: string[] = [];
      try {
        names = readdirSync(parent);
      } catch {
        continue;
      }
      for (const name of names.filter(test)) {
        try {
          rmdirSync(join(parent, name));
        } catch {
          // Not empty yet, or gone.
        }
      }
    }
  }

  /** The directories `create(name)` makes, one per hierarchy (to watch before they exist). */
  dirsFor(name: string): string[] {
    const { memory, pids, cpu, version } = this.layout;
    return version === 1 ? [...new Set([join(memory, name), join(pids, name), ...(cpu ? [join(cpu, name)] : [])])] : [join(memory, name)];
  }

  create(name: string, limits: CgroupLimits): RunCgroup {
    const { layout } = this;
    const memoryDir = join(layout.memory, name);
    const pidsDir = layout.version === 1 ? join(layout.pids, name) : memoryDir;
    const cpuDir = layout.cpu === null ? null : layout.version === 1 ? join(layout.cpu, name) : memoryDir;
    const dirs = [...new Set([memoryDir, pidsDir, ...(cpuDir ? [cpuDir] : [])])];
    const remove = (which = dirs): void => {
      for (const dir of which) {
        try {
          rmdirSync(dir);
        } catch {
          // Still busy for a moment after the last process died, or gone.
        }
      }
    };
    const made: string[] = [];
    try {
      for (const dir of dirs) {
        mkdirSync(dir);
        made.push(dir);
      }
      // The limits must hold, or no sandbox starts. Swap counts too where the
      // kernel accounts it (no dodging the limit by swapping); elsewhere its
      // file is absent or refuses writes, and memory alone limits the run.
      if (layout.version === 1) {
        writeFileSync(join(memoryDir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        writeOptional(join(memoryDir, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
        writeFileSync(join(pidsDir, 'pids.max'), String(limits.pids));
        if (cpuDir && limits.cpus !== undefined) {
          writeFileSync(join(cpuDir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
          writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), String(cpuQuotaUs(limits.cpus)));
        }
      } else {
        writeFileSync(join(memoryDir, 'memory.max'), String(limits.memoryBytes));
        writeOptional(join(memoryDir, 'memory.swap.max'), '0');
        writeFileSync(join(memoryDir, 'pids.max'), String(limits.pids));
        if (cpuDir && limits.cpus !== undefined) writeFileSync(join(cpuDir, 'cpu.max'), `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`);
      }
    } catch (error) {
      remove(made); // No half-made cgroup left behind.
      throw error;
    }
    return {
      procsFiles: dirs.map((dir) => join(dir, 'cgroup.procs')),
      dirs,
      oomKills: () => (layout.version === 1 ? readNumberField(join(memoryDir, 'memory.oom_control'), 'oom_kill') : readNumberField(join(memoryDir, 'memory.events'), 'oom_kill')),
      pidsRefused: () => readNumberField(join(pidsDir, 'pids.events'), 'max'),
      remove: () => remove(),
    };
  }
}

/** The memory and pids counters of the cgroup a process is in (a container's, found by its main pid), or null. */
export interface ProcessCgroup {
  readonly dirs: readonly string[];
  oomKills(): number;
  pidsRefused(): number;
}

/**
 * The cgroup of `pid` (another manager's, such as a container engine's), read
 * from /proc/<pid>/cgroup and this host's cgroup mounts: its OOM kills and
 * refused forks, as {@link RunCgroup} reports them for a cgroup of ours.
 */
export function processCgroup(pid: number): ProcessCgroup | null {
  let mountMap: Map<string, string>;
  const paths = new Map<string, string>();
  try {
    mountMap = mounts();
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers === undefined || path === undefined) continue;
      for (const controller of controllers.split(',')) paths.set(controller, path);
    }
  } catch {
    return null;
  }
  const memoryMount = mountMap.get('memory');
  const pidsMount = mountMap.get('pids');
  if (memoryMount && pidsMount && paths.has('memory') && paths.has('pids')) {
    const memory = join(memoryMount, paths.get('memory') as string);
    const pids = join(pidsMount, paths.get('pids') as string);
    return {
      dirs: [memory, pids],
      oomKills: () => readNumberField(join(memory, 'memory.oom_control'), 'oom_kill'),
      pidsRefused: () => readNumberField(join(pids, 'pids.events'), 'max'),
    };
  }
  const unified = mountMap.get('');
  const path = paths.get('');
  if (!unified || path === undefined) return null;
  const dir = join(unified, path);
  return { dirs: [dir], oomKills: () => readNumberField(join(dir, 'memory.events'), 'oom_kill'), pidsRefused: () => readNumberField(join(dir, 'pids.events'), 'max') };
}
