import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as fsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { diskUsage } from '../../src/sandbox/bwrap/disk-usage.js';

/** Every lstat the walk makes goes through here: counted, and a test may act right after one (a race, made deterministic). */
const lstatHook = vi.hoisted(() => ({ calls: 0, after: null as ((path: string) => void) | null }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof fsPromises>();
  const lstat = async (...args: Parameters<typeof real.lstat>) => {
    lstatHook.calls++;
    const result = await real.lstat(...args);
    lstatHook.after?.(String(args[0]));
    return result;
  };
  return { ...real, lstat, default: { ...real, lstat } };
});

const MIB = 1024 * 1024;
const BIG = { stopAboveBytes: Number.MAX_SAFE_INTEGER, maxEntries: Number.MAX_SAFE_INTEGER };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'oz-disk-usage-'));
  lstatHook.calls = 0;
  lstatHook.after = null;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** `count` empty files spread over directories of `perDir`; returns the number of entries made. */
function emptyFiles(root: string, count: number, perDir = 100): number {
  let dirs = 0;
  for (let i = 0; i < count; i++) {
    const sub = join(root, `d${Math.floor(i / perDir)}`);
    if (i % perDir === 0) {
      mkdirSync(sub, { recursive: true });
      dirs++;
    }
    writeFileSync(join(sub, `f${i}`), '');
  }
  return count + dirs;
}

describe('diskUsage', () => {
  it('counts allocated bytes and every entry of a tree', async () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    writeFileSync(join(root, 'a', 'b', 'data'), Buffer.alloc(MIB, 1));
    writeFileSync(join(root, 'empty'), '');
    const usage = await diskUsage(root, BIG);
    expect(usage.entries).toBe(4); // a, a/b, a/b/data, empty
    expect(usage.bytes).toBeGreaterThanOrEqual(MIB);
    expect(usage.truncated).toBe(false);
  });

  it('catches a tree of empty files by its entries, with no more lstat calls than the budget', async () => {
    const root = join(dir, 'root');
    const made = emptyFiles(root, 2000);
    expect((await diskUsage(root, BIG)).entries).toBe(made);
    lstatHook.calls = 0;
    const usage = await diskUsage(root, { stopAboveBytes: Number.MAX_SAFE_INTEGER, maxEntries: 500 });
    expect(usage.truncated).toBe(true);
    expect(usage.entries).toBe(501);
    expect(lstatHook.calls).toBeLessThanOrEqual(500);
  });

  it('stops once the bytes pass the limit', async () => {
    const root = join(dir, 'root');
    mkdirSync(root);
    for (let i = 0; i < 20; i++) writeFileSync(join(root, `f${i}`), Buffer.alloc(MIB, 1));
    const usage = await diskUsage(root, { stopAboveBytes: 2 * MIB, maxEntries: 1000 });
    expect(usage.truncated).toBe(true);
    expect(usage.bytes).toBeGreaterThan(2 * MIB);
    expect(usage.entries).toBeLessThan(20);
  });

  it('never follows symlinks', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'big'), Buffer.alloc(4 * MIB, 1));
    emptyFiles(outside, 300);
    const root = join(dir, 'root');
    mkdirSync(root);
    symlinkSync(outside, join(root, 'to-dir'));
    symlinkSync(join(outside, 'big'), join(root, 'to-file'));
    const usage = await diskUsage(root, BIG);
    expect(usage).toEqual({ bytes: expect.any(Number), entries: 2, truncated: false });
    expect(usage.bytes).toBeLessThan(MIB);
  });

  it('does not follow a directory swapped for a symlink after lstat saw it', async () => {
    const outside = join(dir, 'outside');
    emptyFiles(outside, 300);
    const root = join(dir, 'root');
    mkdirSync(join(root, 'victim'), { recursive: true });
    lstatHook.after = (path) => {
      if (basename(path) !== 'victim') return;
      renameSync(join(root, 'victim'), join(root, 'moved'));
      symlinkSync(outside, join(root, 'victim'));
    };
    const usage = await diskUsage(root, BIG);
    expect(usage.entries).toBe(1);
  });

  it('does not follow a parent directory swapped for a symlink', async () => {
    // outside/child mirrors root/parent/child, so the path still opens a directory.
    const outside = join(dir, 'outside');
    emptyFiles(join(outside, 'child'), 300);
    const root = join(dir, 'root');
    mkdirSync(join(root, 'parent', 'child'), { recursive: true });
    writeFileSync(join(root, 'parent', 'child', 'own'), '');
    lstatHook.after = (path) => {
      if (basename(path) !== 'child' || !lstatHook.after) return;
      lstatHook.after = null;
      renameSync(join(root, 'parent'), join(root, 'moved'));
      symlinkSync(outside, join(root, 'parent'));
    };
    const usage = await diskUsage(root, BIG);
    // parent and child only: neither the moved child's file nor the outside tree.
    expect(usage.entries).toBe(2);
  });

  it('fails closed on a directory nested deeper than a path can name', async () => {
    // Two chains of long names, each short enough to make, joined by a rename into one too deep to name.
    const level = 'x'.repeat(250);
    const chain = (base: string): string => {
      let path = base;
      for (let i = 0; i < 10; i++) mkdirSync((path = join(path, level)), { recursive: true });
      return path;
    };
    const root = join(dir, 'root');
    const top = chain(root);
    chain(join(dir, 'b'));
    renameSync(join(dir, 'b', level), join(top, 'deep'));
    try {
      expect((await diskUsage(root, BIG)).truncated).toBe(true);
    } finally {
      renameSync(join(top, 'deep'), join(dir, 'b', level)); // So the cleanup can name everything.
    }
  });

  it('shares the walk in progress between overlapping calls for one root', async () => {
    const root = join(dir, 'root');
    emptyFiles(root, 200);
    const other = join(dir, 'other');
    mkdirSync(other);
    const first = diskUsage(root, BIG);
    const second = diskUsage(root, BIG);
    expect(second).toBe(first);
    expect(diskUsage(other, BIG)).not.toBe(first);
    const calls = lstatHook.calls;
    await Promise.all([first, second]);
    expect(lstatHook.calls - calls).toBeLessThanOrEqual(202);
    // Once done, the next call walks afresh.
    const third = diskUsage(root, BIG);
    expect(third).not.toBe(first);
    expect((await third).entries).toBe(202);
  });
});
