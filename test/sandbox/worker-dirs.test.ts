import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ownWorkerDir } from '../../src/sandbox/worker-dirs.js';

describe("a worker's own directory (its runs' support sockets)", () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("is w<pid>, 0711, and made after removing dead workers' (never a live one's)", () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-support-'));
    // A pid that was a process and is no more, and one that is alive (this test's parent).
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    for (const pid of [dead, String(process.ppid)]) {
      mkdirSync(join(dir, `w${pid}`, `run-${pid}-x`), { recursive: true });
      writeFileSync(join(dir, `w${pid}`, `run-${pid}-x`, 'sock'), '');
    }
    mkdirSync(join(dir, 'unrelated'));
    const own = ownWorkerDir(dir);
    expect(own).toBe(join(dir, `w${process.pid}`));
    expect(statSync(own).mode & 0o777).toBe(0o711);
    expect(statSync(dir).mode & 0o777).toBe(0o711);
    expect(existsSync(join(dir, `w${dead}`))).toBe(false);
    expect(existsSync(join(dir, `w${process.ppid}`, `run-${process.ppid}-x`, 'sock'))).toBe(true);
    expect(existsSync(join(dir, 'unrelated'))).toBe(true);
    // A second worker in the same process shares it.
    writeFileSync(join(own, 'live'), '');
    expect(ownWorkerDir(dir)).toBe(own);
    expect(existsSync(join(own, 'live'))).toBe(true);
  });
});
