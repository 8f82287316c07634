import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteDataDir } from '../../src/store/sqlite/open-sqlite-store.js';

const holder = fileURLToPath(new URL('../support/hold-data-dir.ts', import.meta.url));
const tsxLoader = createRequire(import.meta.url).resolve('tsx');
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oz-lock-'));
  dirs.push(dir);
  return join(dir, 'data');
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the data directory lock', () => {
  it('creates the data directory private to its owner', async () => {
    const dir = tempDir();
    const store = await openSqliteDataDir(dir);
    await store.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refuses a second open in the same process until the first closes', async () => {
    const dir = tempDir();
    const first = await openSqliteDataDir(dir);
    await expect(openSqliteDataDir(dir)).rejects.toThrow(/in use by another Oz process/);
    await first.close();
    const second = await openSqliteDataDir(dir);
    await second.close();
  });

  it('refuses another process, and is free again the moment that process is killed', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--import', tsxLoader, holder, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('holding')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
      });
      await expect(openSqliteDataDir(dir)).rejects.toMatchObject({ code: 'conflict', reason: 'data_dir_locked' });
      // A crash (SIGKILL: no cleanup code runs) must not leave a stale lock.
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const store = await openSqliteDataDir(dir);
      await store.close();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
