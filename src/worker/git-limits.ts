import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Cgroups, type RunCgroup } from '../sandbox/bwrap/cgroups.js';
import { MIB } from '../core/units.js';

/**
 * The limits every host-side git runs under (issue 16, "host-side git
 * resolves attacker-made packs without limits"). A pack of a few hundred
 * bytes can declare a delta result of gigabytes, and a fetch resolves every
 * delta it receives: without limits root git on the host would allocate it,
 * outside every sandbox's cgroup. So each host git runs
 *
 * - under rlimits (prlimit): address space (`memoryBytes`, so an absurd
 *   allocation fails at once with git's "Out of memory"), CPU seconds (a
 *   backstop for the wall-clock timeout), the largest file it may write
 *   (`maxFileBytes`: a fetched pack, a loose object), no core dumps;
 * - in a cgroup of its own when the worker can make one (as the sandboxes'):
 *   the memory of all its processes together, and their number;
 * - with git's own caches and windows bounded (below), and every object it
 *   receives checked (fsck).
 *
 * RLIMIT_NPROC is not used: it counts every process of the uid (root's are
 * exempt anyway), not this git's.
 */
export interface HostGitLimits {
  /** Address space of each git process, and the memory of them all (cgroup). */
  memoryBytes: number;
  /** The largest file a host git may write (RLIMIT_FSIZE). */
  maxFileBytes: number;
  /** CPU seconds per process (RLIMIT_CPU). */
  cpuSeconds: number;
  /** Processes and threads of one git invocation (cgroup pids.max). */
  pids: number;
}

export const DEFAULT_HOST_GIT_LIMITS: HostGitLimits = {
  memoryBytes: 2048 * MIB,
  maxFileBytes: 16 * 1024 * MIB,
  // Twice the 15-minute timeout: index-pack's two threads both count.
  cpuSeconds: 30 * 60,
  pids: 128,
};

/**
 * fsck messages about legacy formatting only (dates, time zones, e-mail
 * addresses, zero-padded modes) that old public histories contain: fetching
 * them into a mirror is allowed. Everything else fsck finds — `.git` or `..`
 * in a path, a bad `.gitmodules`, a malformed tree or a missing object —
 * refuses the fetch. A run's own changes get no such leniency.
 */
const LEGACY_FSCK = [
  'badDate',
  'badDateOverflow',
  'badEmail',
  'badName',
  'badTimezone',
  'missingEmail',
  'missingNameBeforeEmail',
  'missingSpaceBeforeDate',
  'missingSpaceBeforeEmail',
  'zeroPaddedDate',
  'zeroPaddedFilemode',
];

/** Git config (key, value) for every host-side git under `limits`. */
export function limitConfig(limits: HostGitLimits): [string, string][] {
  const mib = (bytes: number): string => `${Math.max(1, Math.floor(bytes / MIB))}m`;
  const packedGitLimit = Math.max(64 * MIB, Math.min(256 * MIB, Math.floor(limits.memoryBytes / 4)));
  return [
    // Every object received is checked: on fetch (index-pack --strict), on
    // receive (a local push target), whatever the repository's config says.
    ['transfer.fsckObjects', 'true'],
    ['fetch.fsckObjects', 'true'],
    ['receive.fsckObjects', 'true'],
    ...LEGACY_FSCK.map((id): [string, string] => [`fetch.fsck.${id}`, 'ignore']),
    // Blobs above this are streamed, never held whole (index-pack, unpack-objects, fsck).
    ['core.bigFileThreshold', '64m'],
    // What git keeps in memory per thread, and maps of packs at once.
    ['core.deltaBaseCacheLimit', '32m'],
    ['core.packedGitWindowSize', '32m'],
    ['core.packedGitLimit', mib(packedGitLimit)],
    ['pack.windowMemory', '128m'],
    ['pack.deltaCacheSize', '64m'],
    ['pack.threads', '2'],
  ];
}

/** The rlimits of every host-side git, as prlimit's arguments. */
export function prlimitArgs(limits: HostGitLimits): string[] {
  return [`--as=${limits.memoryBytes}`, `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 30}`, `--fsize=${limits.maxFileBytes}`, '--core=0'];
}

/** Why a limited git failed, as one line for the run's user; null when no limit explains it. */
export function limitFailure(stderr: string, signal: NodeJS.Signals | null, cgroup: { oomKills: number; pidsRefused: number }, limits: HostGitLimits): string | null {
  const memory = `git exceeded its memory limit (${Math.round(limits.memoryBytes / MIB)} MiB) while reading the repository`;
  if (cgroup.oomKills > 0 || /Out of memory|Cannot allocate memory|mmap failed/i.test(stderr)) return memory;
  if (signal === 'SIGXCPU' || /died of signal 24\b/.test(stderr)) return `git exceeded its CPU time limit (${limits.cpuSeconds} s) while reading the repository`;
  if (signal === 'SIGXFSZ' || /died of signal 25\b|File too large/.test(stderr)) {
    return `git exceeded its file size limit (${Math.round(limits.maxFileBytes / MIB)} MiB) while writing the repository`;
  }
  if (cgroup.pidsRefused > 0 || /cannot fork|unable to create thread|fork: Resource temporarily unavailable/.test(stderr))
    return `git exceeded its process limit (${limits.pids}) while reading the repository`;
  return null;
}

const CGROUP_PREFIX = 'oz-g';
let cgroups: Cgroups | null | undefined;
let made = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A cgroup for one host git (`oz-g<worker pid>-<n>`), or null where the
 * worker cannot make cgroups (rlimits alone then). The first call also
 * removes what crashed workers left.
 */
export function hostGitCgroup(limits: HostGitLimits): RunCgroup | null {
  if (cgroups === undefined) {
    cgroups = Cgroups.detect();
    cgroups?.removeStale(CGROUP_PREFIX, alive);
  }
  if (!cgroups) return null;
  return cgroups.create(`${CGROUP_PREFIX}${process.pid}-${++made}`, { memoryBytes: limits.memoryBytes, pids: limits.pids });
}

/** How host-side git is contained on this host, for the worker's start-up log. */
export function hostGitContainment(): string {
  if (cgroups === undefined) {
    cgroups = Cgroups.detect();
    cgroups?.removeStale(CGROUP_PREFIX, alive);
  }
  return cgroups ? `rlimits and ${cgroups.description}` : 'rlimits only (no cgroups this worker can manage)';
}

/** Whether `command` is on `path`. */
export function onPath(command: string, path: string): boolean {
  return path.split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}
