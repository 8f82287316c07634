import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containsAny } from '../../../src/worker/snapshots/contains-any.js';
import { snapshotKey, type SnapshotInputs } from '../../../src/worker/snapshots/snapshot-key.js';

const secretKey = Buffer.alloc(32, 7);
const base: SnapshotInputs = {
  teamId: 'team-a',
  imageDigest: `sha256:${'a'.repeat(64)}`,
  setupCommands: ['npm ci'],
  env: { A: '1', B: '2' },
  network: 'off',
  repos: [{ url: 'https://example.test/app.git', branch: 'main' }],
  secrets: { TOKEN: 'value-1' },
  format: 1,
  backend: 'bwrap',
};

describe('the snapshot key', () => {
  it('is stable, and does not depend on the order of variables', () => {
    expect(snapshotKey(base, secretKey)).toMatch(/^[a-f0-9]{64}$/);
    expect(snapshotKey({ ...base, env: { B: '2', A: '1' } }, secretKey)).toBe(snapshotKey(base, secretKey));
  });

  it('changes with every part that determines what setup leaves', () => {
    const key = snapshotKey(base, secretKey);
    const changed: Partial<SnapshotInputs>[] = [
      { teamId: 'team-b' },
      { imageDigest: `sha256:${'b'.repeat(64)}` },
      { imageDigest: null },
      { setupCommands: ['npm install'] },
      { env: { A: '1', B: '3' } },
      { network: 'on' },
      { repos: [{ url: 'https://example.test/app.git', branch: 'dev' }] },
      { repos: [{ url: 'https://example.test/other.git', branch: 'main' }] },
      { secrets: { TOKEN: 'value-2' } },
      { format: 2 },
      { backend: 'docker' },
    ];
    for (const change of changed) expect(snapshotKey({ ...base, ...change }, secretKey), JSON.stringify(change)).not.toBe(key);
  });

  it('holds secret values only as a keyed hash: another worker key gives another key', () => {
    expect(snapshotKey(base, Buffer.alloc(32, 8))).not.toBe(snapshotKey(base, secretKey));
    expect(snapshotKey(base, secretKey)).not.toContain('value-1');
  });
});

describe('containsAny (a setup-only secret in what setup left)', () => {
  it('finds a value in any file, across read chunks, and not through a symlink', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oz-contains-'));
    try {
      mkdirSync(join(dir, 'a', 'b'), { recursive: true });
      writeFileSync(join(dir, 'a', 'clean.txt'), 'nothing here\n');
      expect(await containsAny(dir, ['super-secret-value'])).toBe(false);
      // Straddling the 1 MiB chunk boundary.
      const big = Buffer.alloc(1024 * 1024 + 100, 'x');
      big.write('super-secret-value', 1024 * 1024 - 5);
      writeFileSync(join(dir, 'a', 'b', 'big.bin'), big);
      expect(await containsAny(dir, ['other', 'super-secret-value'])).toBe(true);
      rmSync(join(dir, 'a', 'b', 'big.bin'));
      const outside = mkdtempSync(join(tmpdir(), 'oz-contains-outside-'));
      writeFileSync(join(outside, 'f'), 'super-secret-value');
      symlinkSync(join(outside, 'f'), join(dir, 'link'));
      expect(await containsAny(dir, ['super-secret-value'])).toBe(false);
      rmSync(outside, { recursive: true, force: true });
      expect(await containsAny(dir, [])).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
