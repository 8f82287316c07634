import type Docker from 'dockerode';
import type { SandboxLimits } from '../sandbox-backend.js';
import { HOST_ETC } from '../sandbox-layout.js';
import { SYSTEM_ROOTS } from './base-image.js';

/** Labels every sandbox container carries, so a restarted worker finds what a crashed one left. */
export const LABELS = {
  sandbox: 'dev.oz.sandbox',
  host: 'dev.oz.host',
  workerPid: 'dev.oz.worker-pid',
  /** The worker process's start time (clock ticks since boot): a reused pid is another process. */
  workerStart: 'dev.oz.worker-start',
  /** The worker's pid namespace: a worker in another one cannot judge this one's pids. */
  pidNamespace: 'dev.oz.pid-ns',
  worker: 'dev.oz.worker',
  run: 'dev.oz.run',
  role: 'dev.oz.role',
} as const;

export interface HostLimits {
  openFiles: number;
  processes: number;
}

/** A host path bound into the container. */
export interface Bind {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerInputs {
  /** The host's static init, bound at {@link REAPER}. */
  reaper: string;
  /** The worker's own limits, the containers' too. */
  hostLimits: HostLimits;
  /** `seccomp=` option's value: the profile itself (Docker) or its file's path (Podman reads a path). */
  seccomp: string;
  name: string;
  image: string;
  /** `platform`: the base image with the host's system bound read-only; `image`: the environment's image. */
  role: 'platform' | 'image';
  /** The in-container user of the container's idle main process. */
  user: string;
  network: boolean;
  limits: SandboxLimits;
  binds: readonly Bind[];
  labels: Record<string, string>;
  /** Read-only root (the base image); an environment image's own layer is the run's writable layer. */
  readOnlyRoot: boolean;
  /** The engine network of a run with network `on` (default: the engine's bridge). */
  networkName?: string;
}

/** Where the host's static init (tini) is bound: pid 1 of every sandbox container. */
export const REAPER = '/oz/bin/reaper';

/**
 * The container's main process: the host's static tini as pid 1 (it reaps
 * orphans, whatever the image holds; the engine's own `--init` is bound at a
 * path of the image, which a merged-/usr base cannot offer), keeping an idle
 * platform node alive. The sandbox's init is started beside it per launch
 * with an exec, as the phase's user.
 */
export function mainCommand(nodePath: string): string[] {
  // It ignores the signals the init sends every process it may (a run's SIGTERM must not end the container).
  return [
    REAPER,
    '-s',
    '--',
    nodePath,
    '-e',
    "for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']) process.on(s, () => {}); setInterval(() => {}, 1 << 30)",
  ];
}

/**
 * The create options of a sandbox container (docs/sandboxes.md "The docker
 * backend"): every capability dropped, no new privileges, the sandbox's
 * seccomp profile (src/sandbox/docker/seccomp-profile.ts), private IPC, the
 * run's memory (swap included), pids and CPU limits, core dumps off and
 * files no larger than the disk limit, network `none` unless the run has
 * network (then the engine's default bridge).
 */
export function containerOptions(inputs: ContainerInputs, nodePath: string): Docker.ContainerCreateOptions {
  const { limits } = inputs;
  const [entrypoint, ...args] = mainCommand(nodePath);
  return {
    name: inputs.name,
    Image: inputs.image,
    Entrypoint: [entrypoint as string],
    Cmd: args,
    User: inputs.user,
    WorkingDir: '/',
    Env: [],
    Hostname: 'oz-sandbox',
    Labels: inputs.labels,
    NetworkDisabled: !inputs.network,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    Tty: false,
    HostConfig: {
      Binds: [{ source: inputs.reaper, target: REAPER, readOnly: true }, ...inputs.binds].map((bind) => `${bind.source}:${bind.target}:${bind.readOnly ? 'ro' : 'rw'}`),
      NetworkMode: inputs.network ? (inputs.networkName ?? 'bridge') : 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true', `seccomp=${inputs.seccomp}`],
      ReadonlyRootfs: inputs.readOnlyRoot,
      IpcMode: 'private',
      Privileged: false,
      Memory: limits.memoryBytes,
      MemorySwap: limits.memoryBytes,
      PidsLimit: limits.pids,
      ...(limits.cpus === undefined ? {} : { NanoCpus: Math.round(limits.cpus * 1e9) }),
      Ulimits: [
        { Name: 'core', Soft: 0, Hard: 0 },
        // Explicit, and no higher than the worker's own: an engine default above the host's (Podman's) fails the start.
        // RLIMIT_NPROC counts the host uid's processes across containers: the pids limit is the cgroup's.
        { Name: 'nofile', Soft: inputs.hostLimits.openFiles, Hard: inputs.hostLimits.openFiles },
        { Name: 'nproc', Soft: inputs.hostLimits.processes, Hard: inputs.hostLimits.processes },
        { Name: 'fsize', Soft: limits.diskBytes, Hard: limits.diskBytes },
      ],
      // The platform's own directory: binds land in it; nothing else can be put there for long.
      ...(inputs.role === 'image' ? { Tmpfs: { '/oz': 'rw,nosuid,nodev,size=1m,mode=755' } } : {}),
      RestartPolicy: { Name: 'no' },
      AutoRemove: false,
    },
  };
}

/** The host's system, read-only, for a container on the base image (as the bwrap backend binds it). */
export function hostSystemBinds(exists: (path: string) => boolean, isDirectory: (path: string) => boolean): Bind[] {
  const binds: Bind[] = [{ source: '/usr', target: '/usr', readOnly: true }];
  for (const name of SYSTEM_ROOTS) if (isDirectory(`/${name}`)) binds.push({ source: `/${name}`, target: `/${name}`, readOnly: true });
  for (const name of HOST_ETC) if (exists(`/etc/${name}`)) binds.push({ source: `/etc/${name}`, target: `/etc/${name}`, readOnly: true });
  return binds;
}

/** This process's hard limits of open files (at most 65536) and processes (at most 32768), from /proc/self/limits. */
export function hostLimits(limits: string): HostLimits {
  const hard = (name: string, fallback: number): number => {
    const line = limits.split('\n').find((l) => l.startsWith(name));
    const value = Number(line?.slice(name.length).trim().split(/\s+/)[1]);
    return Number.isInteger(value) && value > 0 ? value : fallback;
  };
  return { openFiles: Math.min(hard('Max open files', 1024), 65_536), processes: Math.min(hard('Max processes', 4096), 32_768) };
}
