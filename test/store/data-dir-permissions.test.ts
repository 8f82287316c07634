import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteDataDir } from '../../src/store/sqlite/open-sqlite-store.js';
import { startOzServer } from '../support/oz-server-process.js';

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/** Every entry under `dir` (and `dir` itself) with its permission bits, e.g. `{ '.': '0700', 'oz.db': '0600' }`. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': octal(statSync(dir).mode) };
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      out[path] = octal(statSync(join(dir, path)).mode);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk('');
  return out;
}

/** Directories 0700, files 0600: what `modes` should say for every entry. */
function privateModes(dir: string): Record<string, string> {
  return Object.fromEntries(Object.keys(modes(dir)).map((path) => [path, statSync(join(dir, path)).isDirectory() ? '0700' : '0600']));
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the data directory is private to its owner', () => {
  it('a server on a fresh data dir creates it 0700 and every file in it 0600, whatever the umask', async () => {
    // The widest umask: nothing may rely on it.
    const previous = process.umask(0);
    let server;
    try {
      server = await startOzServer('sqlite', { args: ['--no-worker'] });
    } finally {
      process.umask(previous);
    }
    try {
      const running = modes(server.dataDir);
      for (const file of ['oz.db', 'oz.db-wal', 'oz.db-shm', 'oz.lock', 'master.key']) expect(Object.keys(running)).toContain(file);
      expect(running).toEqual(privateModes(server.dataDir));
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('tightens a data dir and database an older version left open to others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'oz-perm-'));
    dirs.push(root);
    const dataDir = join(root, 'data');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    const first = await openSqliteDataDir(dataDir);
    await first.close();
    for (const file of readdirSync(dataDir)) chmodSync(join(dataDir, file), 0o644);
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'oz.db-wal'), '', { flag: 'a' });
    chmodSync(join(dataDir, 'oz.db-wal'), 0o644);

    const store = await openSqliteDataDir(dataDir);
    try {
      const now = modes(dataDir);
      expect(Object.keys(now)).toEqual(expect.arrayContaining(['oz.db', 'oz.lock']));
      expect(now).toEqual(privateModes(dataDir));
    } finally {
      await store.close();
    }
  });
});
