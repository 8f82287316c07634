import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { diskUsage } from '../../sandbox/bwrap/disk-usage.js';
import { rootsToEvict, type StoredRoot } from '../images/image-eviction.js';
import { containsAny } from './contains-any.js';
import { forms } from '../../secrets/redactor.js';

const run = promisify(execFile);
const KEY = /^[a-f0-9]{64}$/;
/** A copy that takes longer than this is abandoned (the run goes on cold-only). */
const SAVE_TIMEOUT_MS = 10 * 60_000;

/** Whether a regular file under `root` has much more size than blocks (holes). */
async function hasSparseFile(root: string): Promise<boolean> {
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) {
        const stat = await lstat(path).catch(() => null);
        if (stat && stat.size > stat.blocks * 512 * 4 + 1048576) return true;
      }
    }
  }
  return false;
}

/** What `oz environment get` shows of a snapshot, and what its events carry. */
export interface SnapshotMeta {
  key: string;
  bytes: number;
  createdAt: number;
  hits: number;
  /** Each checkout's commit when the snapshot was taken (a warm start whose mirror has not moved skips the refresh). */
  bases?: string[];
}

export interface FoundSnapshot {
  meta: SnapshotMeta;
  workspace: string;
  layer: string | null;
}

export type SaveResult = { saved: SnapshotMeta } | { skipped: string };

/** Write `path` whole or not at all. */
function writeWhole(path: string, content: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, content, { mode: 0o600 });
  renameSync(temp, path);
}

/**
 * Warm starts' saved states in the worker's cache (`<cacheDir>/snapshots`,
 * docs/sandboxes.md "Warm starts"): per team (`teams/<sha256 of the team
 * id>/<key>/`), each the workspace setup left (without the platform's
 * `.oz`) and, on an image, the run's writable layer, copied by the worker
 * with every file owned by root (a run sees them through an idmapped mount
 * as its own). Only this worker's root reads them. A copy is made in
 * `tmp/` and renamed into place last; past `maxBytes` the least recently
 * used snapshot no live run starts from is removed.
 */
export class SnapshotStore {
  readonly dir: string;
  /** The HMAC key secret values enter snapshot keys under (src/worker/snapshots/snapshot-key.ts). */
  readonly secretKey: Buffer;
  private readonly inUse = new Map<string, number>();
  /** Snapshots to delete once the last run starting from them releases them. */
  private readonly doomed = new Map<string, string>();

  constructor(
    cacheDir: string,
    private readonly maxBytes: number,
  ) {
    this.dir = join(cacheDir, 'snapshots');
    for (const sub of ['teams', 'tmp']) mkdirSync(join(this.dir, sub), { recursive: true, mode: 0o700 });
    const keyFile = join(this.dir, 'secret-key');
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32), { mode: 0o600, flag: 'wx' });
    this.secretKey = readFileSync(keyFile);
    // Copies a crashed worker left half made.
    for (const entry of readdirSync(join(this.dir, 'tmp'))) rmSync(join(this.dir, 'tmp', entry), { recursive: true, force: true });
  }

  private teamDir(teamId: string): string {
    return join(this.dir, 'teams', createHash('sha256').update(teamId).digest('hex'));
  }

  private readMeta(dir: string): SnapshotMeta | null {
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as SnapshotMeta;
      return KEY.test(meta.key) && Number.isFinite(meta.bytes) ? meta : null;
    } catch {
      return null;
    }
  }

  /** The team's snapshot of `key`, held for the caller until `release`, its hit counted; null if there is none. */
  find(teamId: string, key: string): FoundSnapshot | null {
    const dir = join(this.teamDir(teamId), key);
    const meta = this.readMeta(dir);
    if (!meta) return null;
    const hit = { ...meta, hits: meta.hits + 1 };
    writeWhole(join(dir, 'meta.json'), JSON.stringify(hit));
    this.inUse.set(key, (this.inUse.get(key) ?? 0) + 1);
    const layer = join(dir, 'layer');
    return { meta: hit, workspace: join(dir, 'workspace'), layer: existsSync(layer) ? layer : null };
  }

  /**
   * The team's snapshot of `key` held as by {@link find}, without counting a
   * hit (a spare sandbox started on it: the run that takes the spare finds it
   * itself); null if there is none any more.
   */
  hold(teamId: string, key: string): FoundSnapshot | null {
    const dir = join(this.teamDir(teamId), key);
    const meta = this.readMeta(dir);
    if (!meta) return null;
    this.inUse.set(key, (this.inUse.get(key) ?? 0) + 1);
    const layer = join(dir, 'layer');
    return { meta, workspace: join(dir, 'workspace'), layer: existsSync(layer) ? layer : null };
  }

  release(key: string): void {
    const count = (this.inUse.get(key) ?? 0) - 1;
    if (count > 0) {
      this.inUse.set(key, count);
      return;
    }
    this.inUse.delete(key);
    const dir = this.doomed.get(key);
    if (dir) {
      this.doomed.delete(key);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Drop the team's snapshot of `key` (it led to a failure): now, or when the last run starting from it releases it (its mounts need it until then). */
  remove(teamId: string, key: string): void {
    const dir = join(this.teamDir(teamId), key);
    if (this.inUse.has(key)) {
      // Not found again meanwhile: its meta goes now, the files with the last release.
      rmSync(join(dir, 'meta.json'), { force: true });
      this.doomed.set(key, dir);
      return;
    }
    rmSync(dir, { recursive: true, force: true });
  }

  /**
   * Keep what the run wrote as the team's snapshot of `key`: `from` are the
   * sandbox's host directories (src/sandbox/sandbox-backend.ts `stateDirs`),
   * read while none of its processes runs. Refused, and nothing kept, when a
   * value of `forbidden` (the setup-only secrets) is in any file.
   */
  async save(
    teamId: string,
    key: string,
    from: { workspace: string; layer: string | null; keepOwners?: boolean },
    forbidden: readonly string[],
    bases: readonly string[] = [],
  ): Promise<SaveResult> {
    const work = mkdtempSync(join(this.dir, 'tmp', 'save-'));
    try {
      const copy = async (source: string, name: string): Promise<void> => {
        // -a keeps modes, times, links, xattrs (an overlay layer's whiteouts and opaque
        // directories) and never follows a symlink; the copy is root's, not the run's uid,
        // unless the backend's uids are the host's (docker), whose restore puts them back as they were.
        const owners = from.keepOwners ? [] : ['--no-preserve=ownership'];
        await run('cp', ['-a', ...owners, `${source}/.`, join(work, name)], { env: { PATH: '/usr/bin:/bin' }, maxBuffer: 1024 * 1024, timeout: SAVE_TIMEOUT_MS });
      };
      mkdirSync(join(work, 'workspace'));
      await copy(from.workspace, 'workspace');
      rmSync(join(work, 'workspace', '.oz'), { recursive: true, force: true });
      if (from.layer) {
        mkdirSync(join(work, 'layer'));
        await copy(from.layer, 'layer');
      }
      // Root's files now: no set-user or set-group bit survives (the store is root's only, and runs
      // see it nosuid, but a setuid-root file has no business on the host at all).
      await run('chmod', ['-R', 'ug-s', work], { env: { PATH: '/usr/bin:/bin' } });
      // Measured before it is read: a sparse file of terabytes costs nothing to copy and everything to scan.
      const { bytes } = await diskUsage(work, { stopAboveBytes: Number.MAX_SAFE_INTEGER, maxEntries: Number.MAX_SAFE_INTEGER });
      if (bytes > this.maxBytes) return { skipped: `it is ${Math.ceil(bytes / 1048576)} MiB, more than the snapshot store keeps (OZ_SNAPSHOT_STORE_MB)` };
      if (forbidden.length > 0 && (await hasSparseFile(work))) return { skipped: 'setup left a sparse file, which cannot be checked for setup-only secrets' };
      // In every form the redactor masks (base64 in an npm _auth, URL-encoded in a .git-credentials…).
      if (await containsAny(work, [...new Set(forbidden.flatMap(forms))])) return { skipped: 'a setup-only secret is in what setup left, so it is not kept' };
      const meta: SnapshotMeta = { key, bytes, createdAt: Date.now(), hits: 0, bases: [...bases] };
      writeWhole(join(work, 'meta.json'), JSON.stringify(meta));
      const teamDir = this.teamDir(teamId);
      mkdirSync(teamDir, { recursive: true, mode: 0o700 });
      const target = join(teamDir, key);
      // A snapshot of the same key from a concurrent run is as good: replace it unless a run starts from it.
      if (existsSync(target)) {
        if (this.inUse.has(key)) return { skipped: 'a snapshot of the same key is in use' };
        rmSync(target, { recursive: true, force: true });
      }
      renameSync(work, target);
      this.evict();
      return { saved: meta };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  private evict(): void {
    const all: (StoredRoot & { dir: string })[] = [];
    for (const team of readdirSync(join(this.dir, 'teams'))) {
      for (const key of readdirSync(join(this.dir, 'teams', team))) {
        const dir = join(this.dir, 'teams', team, key);
        const meta = this.readMeta(dir);
        if (meta) all.push({ digest: key, bytes: meta.bytes, lastUsedMs: statSync(join(dir, 'meta.json')).mtimeMs, dir });
      }
    }
    const evicted = new Set(rootsToEvict(all, new Set(this.inUse.keys()), this.maxBytes));
    for (const entry of all) if (evicted.has(entry.digest)) rmSync(entry.dir, { recursive: true, force: true });
  }
}
