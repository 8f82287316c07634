import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../../src/worker/snapshots/snapshot-store.js';

const KEY = 'a'.repeat(64);

/** The store's own rules, on real directories: what is kept, what a failed start drops, when. */
describe('the snapshot store', () => {
  const root = mkdtempSync(join(tmpdir(), 'oz-snapshot-store-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const workspace = (name: string, files: Record<string, string>): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
    return dir;
  };

  it('keeps a copy without .oz, counts hits, and is per team', async () => {
    const store = new SnapshotStore(join(root, 'cache-a'), 1024 * 1024 * 1024);
    const from = workspace('ws-a', { 'built.txt': 'built\n' });
    mkdirSync(join(from, '.oz'));
    writeFileSync(join(from, '.oz', 'prompt.sh'), 'platform file');
    const result = await store.save('team-1', KEY, { workspace: from, layer: null }, [], ['c'.repeat(40)]);
    expect(result).toMatchObject({ saved: { key: KEY, hits: 0, bases: ['c'.repeat(40)] } });
    const found = store.find('team-1', KEY);
    expect(found?.meta.hits).toBe(1);
    expect(existsSync(join(found?.workspace as string, 'built.txt'))).toBe(true);
    expect(existsSync(join(found?.workspace as string, '.oz'))).toBe(false);
    expect(store.find('team-2', KEY)).toBeNull();
    store.release(KEY);
  });

  it('drops a snapshot that led to a failed start: unfindable at once, its files once the last run releases it', async () => {
    const store = new SnapshotStore(join(root, 'cache-b'), 1024 * 1024 * 1024);
    await store.save('team-1', KEY, { workspace: workspace('ws-b', { 'x.txt': 'x' }), layer: null }, []);
    const first = store.find('team-1', KEY);
    const second = store.find('team-1', KEY);
    expect(first && second).toBeTruthy();
    store.remove('team-1', KEY);
    expect(store.find('team-1', KEY)).toBeNull();
    store.release(KEY);
    // Another run still has it mounted: the files stay.
    expect(existsSync(join(first?.workspace as string, 'x.txt'))).toBe(true);
    store.release(KEY);
    expect(existsSync(first?.workspace as string)).toBe(false);
  });

  it('keeps nothing that holds a setup-only secret, or more than the store may hold', async () => {
    const store = new SnapshotStore(join(root, 'cache-c'), 1024 * 1024);
    const secret = 'setup-only-value-42';
    const leaky = workspace('ws-c', { '.npmrc': `_auth=${Buffer.from(secret).toString('base64')}\n` });
    expect(await store.save('team-1', KEY, { workspace: leaky, layer: null }, [secret])).toMatchObject({ skipped: expect.stringContaining('setup-only secret') });
    const big = workspace('ws-d', { 'big.bin': 'y'.repeat(2 * 1024 * 1024) });
    expect(await store.save('team-1', KEY, { workspace: big, layer: null }, [])).toMatchObject({ skipped: expect.stringContaining('OZ_SNAPSHOT_STORE_MB') });
    expect(store.find('team-1', KEY)).toBeNull();
  });
});
