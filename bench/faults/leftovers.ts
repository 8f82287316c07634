/**
 * What the harness must not leave behind, looked for once the deployment is
 * stopped: its own processes (by the PIDs it started, if still `oz`),
 * sandbox processes of its runs, processes working in its directory or
 * started with it in their environment (watchdogs, host git), run
 * directories under its sandbox root, and cgroups named for its workers
 * (`oz-w<pid>-…`). Whatever is found is reported, then removed by PID / path.
 */
import { readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Violation } from './checks.js';

function cmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return null;
  }
}

/** Directories holding this process's cgroups, per hierarchy (v1 per controller, v2 unified): where workers make theirs. */
export function cgroupParents(): string[] {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers !== undefined && path !== undefined) for (const c of controllers.split(',')) own.set(c, path);
  }
  const parents = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4] ?? '';
    const [fsType, , options = ''] = right.split(' ');
    if (fsType === 'cgroup2') parents.add(join(mountPoint, own.get('') ?? '/'));
    if (fsType === 'cgroup') {
      const controller = options.split(',').find((o) => own.has(o));
      if (controller) parents.add(join(mountPoint, own.get(controller) ?? '/'));
    }
  }
  return [...parents];
}

export interface LeftoverScope {
  /** Every PID the harness started (servers, workers). */
  pids: readonly number[];
  /** The workers' PIDs (their sandbox dirs and cgroups carry them). */
  workerPids: readonly number[];
  /** Live sandbox processes now (pid → uid) and which of those uids were runs of this deployment. */
  sandboxProcesses: ReadonlyMap<number, number>;
  ownUids: ReadonlySet<number>;
  sandboxRoot: string;
  /** The harness's directory: no process may still work in it. */
  root: string;
}

/** Find and report what is left; then end those processes (SIGKILL by PID) and remove those directories and cgroups. */
export function findAndRemoveLeftovers(scope: LeftoverScope): Violation[] {
  const out: Violation[] = [];
  const kill: number[] = [];
  for (const pid of scope.pids) {
    const line = cmdline(pid);
    if (line?.includes('bin/oz.js')) {
      out.push({ kind: 'leftover_process', runId: null, detail: `pid ${pid} still runs: ${line.slice(0, 120)}` });
      kill.push(pid);
    }
  }
  for (const [pid, uid] of scope.sandboxProcesses) {
    if (!scope.ownUids.has(uid)) continue;
    out.push({ kind: 'leftover_sandbox_process', runId: null, detail: `pid ${pid} (sandbox uid ${uid}) still runs: ${(cmdline(pid) ?? '').slice(0, 120)}` });
    kill.push(pid);
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    if (kill.includes(Number(name))) continue;
    try {
      // Ours: working in the harness's directory, or started with it in the environment (a worker's watchdog, host git).
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      const environ = readFileSync(`/proc/${name}/environ`, 'utf8');
      if (cwd === scope.root || cwd.startsWith(`${scope.root}/`) || environ.includes(`${scope.root}/`)) {
        out.push({ kind: 'leftover_process', runId: null, detail: `pid ${name} (cwd ${cwd}) still runs: ${(cmdline(Number(name)) ?? '').slice(0, 120)}` });
        kill.push(Number(name));
      }
    } catch {
      // Gone, or not ours to read.
    }
  }
  for (const pid of new Set(kill)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  let entries: string[] = [];
  try {
    entries = readdirSync(scope.sandboxRoot);
  } catch {
    // No sandbox root.
  }
  for (const entry of entries) {
    const inside = (() => {
      try {
        return readdirSync(join(scope.sandboxRoot, entry)).filter((n) => n !== 'staged');
      } catch {
        return [];
      }
    })();
    out.push({
      kind: 'leftover_sandbox_dir',
      runId: null,
      detail: `${join(scope.sandboxRoot, entry)}${inside.length ? ` (${inside.slice(0, 4).join(', ')}${inside.length > 4 ? ', …' : ''})` : ''}`,
    });
    rmSync(join(scope.sandboxRoot, entry), { recursive: true, force: true });
  }
  const prefixes = scope.workerPids.map((pid) => `oz-w${pid}-`);
  for (const parent of cgroupParents()) {
    let names: string[] = [];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => prefixes.some((p) => n.startsWith(p)))) {
      out.push({ kind: 'leftover_cgroup', runId: null, detail: join(parent, name) });
      try {
        rmdirSync(join(parent, name));
      } catch {
        // Still busy: its processes were just killed.
      }
    }
  }
  return out;
}
