/**
 * Killing what a sandbox left, and removing where it lived, without the
 * sandbox's cooperation: by cgroup, by its host uid, by process (checked by
 * start time, so a recycled pid is never hit) or by process group. Used by
 * the fence watchdog (src/sandbox/watchdog.ts, a process of its own) and by a
 * backend recovering from a crashed predecessor, so it imports nothing but
 * Node's built-ins.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';

/** A process known by pid and start time (clock ticks after boot, /proc/<pid>/stat field 22). */
export interface KnownProcess {
  pid: number;
  start: number;
}

/** Everything that identifies a sandbox's processes on the host. */
export interface ReapTarget {
  /** The sandbox's own host uid (a root worker's per-run uid): every process with it dies. */
  uid?: number;
  /** Its cgroup directories (cgroup.kill on v2, else each pid in cgroup.procs). */
  cgroups?: readonly string[];
  /** Processes of the launch (the launcher, the namespace's pid 1), by identity. */
  processes?: readonly KnownProcess[];
  /** Process groups (the direct backend's execs). */
  groups?: readonly number[];
  /**
   * Crash recovery: bubblewrap launchers (processes named `bwrap`) holding a
   * descriptor below this directory, a dead worker's. One killed while it
   * started can be left waiting for good, with no cgroup or uid of its own
   * to find it by when the worker was not root.
   */
  launchersHolding?: string;
}

/** What to remove once a target's processes are dead (a worker that died cannot). */
export interface Leftovers {
  /** Cgroup directories to remove. */
  cgroups?: readonly string[];
  /** Mount points to unmount (deepest first), with the `umount` binary to use. */
  mounts?: readonly string[];
  umount?: string;
  /** Directories to remove, after the unmounts. */
  dirs?: readonly string[];
}

interface ProcStat {
  state: string;
  pgrp: number;
  start: number;
}

function procStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold anything: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgrp: Number(fields[2]), start: Number(fields[19]) };
  } catch {
    return null;
  }
}

/** A live process's start time; null when it is gone or a zombie (dead, waiting for its parent). */
export function processStart(pid: number): number | null {
  const stat = procStat(pid);
  return stat && stat.state !== 'Z' && stat.state !== 'X' ? stat.start : null;
}

function alivePid(pid: number): boolean {
  return processStart(pid) !== null;
}

function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone meanwhile.
  }
}

function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

/** The real uid of a process (from status: /proc/<pid>'s owner is root for a non-dumpable one). */
function realUid(pid: number): number | null {
  try {
    const line = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line ? Number(line[1]) : null;
  } catch {
    return null;
  }
}

/** Is `pid` a bwrap holding a descriptor below `dir`? */
function holds(pid: number, dir: string): boolean {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'bwrap') return false;
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(prefix);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** SIGKILL every live process of the target once; returns how many were found. */
function killOnce(target: ReapTarget): number {
  let found = 0;
  for (const dir of target.cgroups ?? []) {
    if (existsSync(`${dir}/cgroup.kill`)) {
      try {
        writeFileSync(`${dir}/cgroup.kill`, '1');
      } catch {
        // Removed meanwhile.
      }
    }
    let pids: number[] = [];
    try {
      pids = readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      continue; // Gone.
    }
    for (const pid of pids) {
      if (!alivePid(pid)) continue;
      found++;
      sigkill(pid);
    }
  }
  for (const known of target.processes ?? []) {
    if (processStart(known.pid) !== known.start) continue;
    found++;
    sigkill(known.pid);
  }
  if ((target.groups ?? []).length > 0) {
    const groups = new Set(target.groups);
    for (const group of groups) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // No such group (any more).
      }
    }
    // Counted by live members: a group of zombies still takes a signal.
    for (const pid of allPids()) {
      const stat = procStat(pid);
      if (stat && groups.has(stat.pgrp) && stat.state !== 'Z' && stat.state !== 'X') found++;
    }
  }
  if (target.launchersHolding !== undefined) {
    for (const pid of allPids()) {
      if (!holds(pid, target.launchersHolding) || !alivePid(pid)) continue;
      found++;
      sigkill(pid);
    }
  }
  if (target.uid !== undefined && target.uid !== 0 && target.uid !== process.getuid?.()) {
    for (const pid of allPids()) {
      if (realUid(pid) !== target.uid || !alivePid(pid)) continue;
      found++;
      sigkill(pid);
    }
  }
  return found;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/**
 * SIGKILL every process of the target, again until none is left (a process
 * may fork between a scan and its kill) or `timeoutMs` passes. Synchronous:
 * callers do nothing else meanwhile. Returns whether none is left.
 */
export function reap(target: ReapTarget, timeoutMs = 5000): boolean {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (killOnce(target) === 0) return true;
    if (Date.now() > until) return false;
    sleepMs(10);
  }
}

/** Mount points at or below `prefix` (from /proc/self/mountinfo), deepest first. */
export function mountsUnder(prefix: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal.
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, code: string) => String.fromCharCode(Number.parseInt(code, 8))))
    .filter((point) => point === prefix || point.startsWith(base));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount `point` (lazily if it is still busy); returns whether it is no longer mounted. */
export function unmount(point: string, umountBin: string): boolean {
  // A point may be mounted over more than once: one unmount per layer, lazily once a plain one failed.
  for (let attempt = 0; attempt < 8; attempt++) {
    if (!mountsUnder(point).includes(point)) return true;
    spawnSync(umountBin, attempt === 0 ? [point] : ['-l', point], { stdio: 'ignore', env: {} });
  }
  return !mountsUnder(point).includes(point);
}

/**
 * Remove what dead sandboxes left: cgroups (once empty), mounts, then
 * directories (never one that still has a mount below it: the removal would
 * descend into that file system). Returns what could not be removed.
 */
export function removeLeftovers(leftovers: Leftovers, timeoutMs = 2000): string[] {
  const failed: string[] = [];
  const until = Date.now() + timeoutMs;
  for (const dir of leftovers.cgroups ?? []) {
    for (;;) {
      try {
        rmdirSync(dir);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
        // EBUSY: a killed process not yet gone from it.
        if (Date.now() > until) {
          failed.push(dir);
          break;
        }
        sleepMs(10);
      }
    }
  }
  for (const point of leftovers.mounts ?? []) {
    if (!unmount(point, leftovers.umount ?? 'umount')) failed.push(point);
  }
  for (const dir of leftovers.dirs ?? []) {
    if (mountsUnder(dir).length > 0) {
      failed.push(dir);
      continue;
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      failed.push(dir);
    }
  }
  return failed;
}

/** Is there a live process with this pid? (EPERM: yes, someone else's.) */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
