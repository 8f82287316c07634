/**
 * The host's view: which sandboxes exist, sampled from /proc every ~200 ms.
 *
 * Run as root, the bwrap backend gives each sandbox its own host uid from
 * [1 900 000 000, 2 100 000 000) (src/sandbox/bwrap/bwrap-backend.ts), so a
 * process with such a real uid belongs to a sandbox, and one uid is one
 * sandbox. Its run comes from the run directory the backend made for it,
 * `<sandbox root>/w<worker pid>/run-<run id>-XXXXXX`, whose `workspace` is
 * owned by that uid; or, when that directory is gone already, from the
 * sandbox's cgroup `oz-w<worker pid>-<run id>-<uid>` (where cgroups are used),
 * when that worker pid is one of this deployment's. Sandboxes of other
 * workers on the host (other test suites) are counted, never checked.
 * A uid once mapped stays mapped (uids are drawn at random per sandbox).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const UID_MIN = 1_900_000_000;
const UID_MAX = 2_100_000_000;

export interface SandboxSighting {
  runId: string;
  uid: number;
  workerPid: number | null;
  firstSeen: number;
  lastSeen: number;
  pids: Set<number>;
}

export interface ConcurrentSighting {
  runId: string;
  at: number;
  uids: number[];
}

interface Owner {
  runId: string;
  workerPid: number | null;
}

/** The process's real uid; null for a zombie (dead, only waiting for its parent — a frozen worker — to reap it) or a vanished one. */
function realUid(pid: string): number | null {
  try {
    const lines = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n');
    if (/^State:\s+Z/.test(lines.find((l) => l.startsWith('State:')) ?? '')) return null;
    const line = lines.find((l) => l.startsWith('Uid:'));
    return line ? Number(line.split(/\s+/)[1]) : null;
  } catch {
    return null;
  }
}

function ownerFromCgroup(pid: string): Owner | null {
  try {
    const match = /\/oz-w(\d+)-(.+)-(\d+)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    return match ? { runId: match[2] as string, workerPid: Number(match[1]) } : null;
  } catch {
    return null;
  }
}

export class HostSampler {
  /** By `runId:uid`. */
  readonly sandboxes = new Map<string, SandboxSighting>();
  /** Samples in which one run had more than one sandbox. */
  readonly concurrent: ConcurrentSighting[] = [];
  /** Sandbox uids of other workers on the host, or whose run could not be told. */
  readonly foreign = new Set<number>();
  samples = 0;
  slowestSampleMs = 0;
  private readonly owners = new Map<number, Owner>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sandboxRoot: string,
    /** Is this worker pid one of the deployment's? */
    private readonly ours: (workerPid: number) => boolean,
  ) {}

  start(intervalMs = 200): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Map the uids of the run directories that exist now. */
  private scanRunDirs(): void {
    let workers: string[] = [];
    try {
      workers = readdirSync(this.sandboxRoot).filter((n) => /^w\d+$/.test(n));
    } catch {
      return;
    }
    for (const worker of workers) {
      let runs: string[] = [];
      try {
        runs = readdirSync(join(this.sandboxRoot, worker));
      } catch {
        continue;
      }
      for (const dir of runs) {
        const runId = /^run-(.+)-[A-Za-z0-9]{6}$/.exec(dir)?.[1];
        if (!runId) continue;
        try {
          const uid = statSync(join(this.sandboxRoot, worker, dir, 'workspace')).uid;
          if (uid >= UID_MIN && uid < UID_MAX && !this.owners.has(uid)) this.owners.set(uid, { runId, workerPid: Number(worker.slice(1)) });
        } catch {
          // Being made or removed.
        }
      }
    }
  }

  /** Live sandbox processes now: pid → uid. */
  sandboxProcesses(): Map<number, number> {
    const found = new Map<number, number>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const uid = realUid(name);
      if (uid !== null && uid >= UID_MIN && uid < UID_MAX) found.set(Number(name), uid);
    }
    return found;
  }

  /** The run a sandbox uid belongs to, if known. */
  ownerOf(uid: number): Owner | null {
    return this.owners.get(uid) ?? null;
  }

  sample(): void {
    const started = performance.now();
    const now = Date.now();
    this.scanRunDirs();
    const byRun = new Map<string, Set<number>>();
    for (const [pid, uid] of this.sandboxProcesses()) {
      let owner = this.owners.get(uid) ?? null;
      if (!owner) {
        const found = ownerFromCgroup(String(pid));
        if (found && found.workerPid !== null && this.ours(found.workerPid)) {
          owner = found;
          this.owners.set(uid, owner);
        }
      }
      if (!owner) {
        this.foreign.add(uid);
        continue;
      }
      if (owner.runId === 'probe') continue; // the worker's start-up check
      const key = `${owner.runId}:${uid}`;
      const sighting = this.sandboxes.get(key) ?? { runId: owner.runId, uid, workerPid: owner.workerPid, firstSeen: now, lastSeen: now, pids: new Set<number>() };
      sighting.lastSeen = now;
      sighting.pids.add(pid);
      this.sandboxes.set(key, sighting);
      const uids = byRun.get(owner.runId) ?? new Set<number>();
      uids.add(uid);
      byRun.set(owner.runId, uids);
    }
    for (const [runId, uids] of byRun) if (uids.size > 1) this.concurrent.push({ runId, at: now, uids: [...uids] });
    this.samples++;
    this.slowestSampleMs = Math.max(this.slowestSampleMs, performance.now() - started);
  }
}
