import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImagePullCancelledError,
  ImageNotFoundError,
  InsecureRegistryError,
  InvalidImageReferenceError,
  RegistryRefusedError,
  RegistryUnreachableError,
} from '../../../src/worker/images/image-errors.js';
import { ImageStore } from '../../../src/worker/images/image-store.js';
import { freePort } from '../../support/free-port.js';
import { buildTestImage, imageToolsMissing, push, TestRegistry } from './registry-fixture.js';
import { buildBusyboxImage } from '../../support/busybox-image.js';

/**
 * The image store against a real registry (distribution's `registry serve`)
 * on 127.0.0.1, with a real skopeo and umoci: no network beyond loopback.
 */
const unavailable = imageToolsMissing();
if (unavailable) {
  if (process.env.CI === 'true') throw new Error(`image store tests need their tools under CI: ${unavailable}`);
  console.warn(`[image-store tests] skipped: ${unavailable}`);
}

const CREDS = { username: 'oz', password: 'correct horse' };

describe.skipIf(unavailable !== null)('ImageStore', () => {
  let dir: string;
  let open: TestRegistry;
  let guarded: TestRegistry;

  beforeAll(async () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'oz-image-store-')));
    open = await TestRegistry.start(join(dir, 'open'));
    guarded = await TestRegistry.start(join(dir, 'guarded'), CREDS);
    const image = buildTestImage(join(dir, 'build'));
    for (const tag of ['1', '2', '3']) push(image, `${open.address}/test/img:${tag}`);
    push(image, `${guarded.address}/test/private:1`, CREDS);
  });

  afterAll(async () => {
    await open?.stop();
    await guarded?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const freshStore = (): ImageStore => new ImageStore(mkdtempSync(join(dir, 'cache-')));
  const leftovers = (store: ImageStore): string[] => readdirSync(join(store.dir, 'tmp'));

  it('pulls and unpacks an image, with its config', async () => {
    const store = freshStore();
    const image = await store.ensure(`${open.address}/test/img:1`);
    expect(image.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(image.rootDir).toBe(join(store.dir, 'roots', image.digest));
    expect(readFileSync(join(image.rootDir, 'app', 'hello.txt'), 'utf8')).toBe('hello from the image\n');
    expect(readFileSync(join(image.rootDir, 'app', 'run.sh'), 'utf8')).toContain('echo hi');
    expect(image.config).toMatchObject({ workingDir: '/app', user: '1000:1000', cmd: ['/app/run.sh'], entrypoint: null });
    expect(image.config.env).toContain('GREETING=hello');
    expect(leftovers(store)).toEqual([]);
    expect(readdirSync(join(store.dir, 'blobs', 'sha256')).length).toBeGreaterThanOrEqual(3);
  });

  it('reuses what it has: a second ensure, also from a new store on the same cache, asks the registry nothing', async () => {
    const cacheDir = mkdtempSync(join(dir, 'cache-'));
    // The image's data (its /etc reader is a function of the root, so not compared by identity).
    const data = (image: Awaited<ReturnType<ImageStore['ensure']>>) => ({ digest: image.digest, rootDir: image.rootDir, config: image.config });
    const first = data(await new ImageStore(cacheDir).ensure(`${open.address}/test/img:1`));
    const requests = open.manifestRequests('test/img');
    const store = new ImageStore(cacheDir);
    expect(data(await store.ensure(`${open.address}/test/img:1`))).toEqual(first);
    expect(data(await store.ensure(`${open.address}/test/img:1`))).toEqual(first);
    expect(open.manifestRequests('test/img')).toBe(requests);

    // Another tag of the same manifest: pulled (the registry is asked), unpacked no second time.
    const second = await store.ensure(`${open.address}/test/img:2`);
    expect(second.digest).toBe(first.digest);
    expect(readdirSync(join(store.dir, 'roots'))).toEqual([first.digest]);
  });

  it('pulls once for concurrent ensures of one image', async () => {
    const single = freshStore();
    let before = open.manifestRequests('test/img');
    await single.ensure(`${open.address}/test/img:3`);
    const onePull = open.manifestRequests('test/img') - before;
    expect(onePull).toBeGreaterThan(0);

    const store = freshStore();
    before = open.manifestRequests('test/img');
    const [a, b, c] = await Promise.all([store.ensure(`${open.address}/test/img:3`), store.ensure(`${open.address}/test/img:3`), store.ensure(`${open.address}/test/img:3`)]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(open.manifestRequests('test/img') - before).toBe(onePull);
  });

  it('says a missing tag does not exist, naming the image, and leaves nothing behind', async () => {
    const store = freshStore();
    const reference = `${open.address}/test/img:nope`;
    const error = await store.ensure(reference).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageNotFoundError);
    expect(error).toMatchObject({ code: 'not_found', message: expect.stringContaining(reference) });
    expect(leftovers(store)).toEqual([]);
    expect(readdirSync(join(store.dir, 'roots'))).toEqual([]);
  });

  it('is refused by a registry that wants credentials, and gets in with them', async () => {
    const store = freshStore();
    const reference = `${guarded.address}/test/private:1`;
    await expect(store.ensure(reference)).rejects.toBeInstanceOf(RegistryRefusedError);
    await expect(store.ensure(reference, { auth: { username: 'oz', password: 'wrong' } })).rejects.toMatchObject({ code: 'refused', message: expect.stringContaining(reference) });
    const image = await store.ensure(reference, { auth: CREDS });
    expect(readFileSync(join(image.rootDir, 'app', 'hello.txt'), 'utf8')).toBe('hello from the image\n');
    // The auth file went with the pull.
    expect(leftovers(store)).toEqual([]);
  });

  it('never serves an image pulled with credentials to a caller without them, from the cache or a shared pull', async () => {
    const store = freshStore();
    const reference = `${guarded.address}/test/private:1`;
    const [withKey, without] = await Promise.allSettled([store.ensure(reference, { auth: CREDS }), store.ensure(reference)]);
    expect(withKey.status).toBe('fulfilled');
    expect(without.status === 'rejected' && without.reason).toBeInstanceOf(RegistryRefusedError);
    await expect(store.ensure(reference)).rejects.toBeInstanceOf(RegistryRefusedError);
    await expect(store.ensure(reference, { auth: { username: 'oz', password: 'wrong' } })).rejects.toBeInstanceOf(RegistryRefusedError);
    expect((await store.ensure(reference, { auth: CREDS })).rootDir).toBe(withKey.status === 'fulfilled' ? withKey.value.rootDir : '');
  });

  it('goes on with a shared pull when one of its callers is cancelled', async () => {
    const store = freshStore();
    const reference = `${open.address}/test/img:1`;
    const controller = new AbortController();
    const cancelled = store.ensure(reference, { signal: controller.signal });
    const kept = store.ensure(reference);
    controller.abort();
    await expect(cancelled).rejects.toBeInstanceOf(ImagePullCancelledError);
    expect(readFileSync(join((await kept).rootDir, 'app', 'hello.txt'), 'utf8')).toBe('hello from the image\n');
  });

  it('refuses plain HTTP to a registry off loopback before resolving its name', async () => {
    const store = freshStore();
    const error = await store.ensure('http://registry.invalid/test/img:1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InsecureRegistryError);
    expect((error as Error).message).toContain('http://registry.invalid/test/img:1');
    expect(leftovers(store)).toEqual([]);
  });

  it('says an unreachable registry is unreachable, an invalid reference is invalid, a cancelled pull is cancelled', async () => {
    const store = freshStore();
    const closed = `127.0.0.1:${await freePort()}/test/img:1`;
    await expect(store.ensure(closed)).rejects.toBeInstanceOf(RegistryUnreachableError);
    await expect(store.ensure('Bad Name')).rejects.toBeInstanceOf(InvalidImageReferenceError);
    await expect(store.ensure(`${open.address}/test/img:1`, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(ImagePullCancelledError);
    expect(leftovers(store)).toEqual([]);
  });

  it('past its size limit evicts the least recently used image, never one a live run uses, with the blobs only it had', async () => {
    const other = buildBusyboxImage(join(dir, 'other'));
    push(other.reference, `${open.address}/test/other:1`);
    const store = new ImageStore(mkdtempSync(join(dir, 'cache-')), { maxBytes: 1 });
    const first = await store.ensure(`${open.address}/test/img:1`);
    // Over the limit, but in use: kept.
    const second = await store.ensure(`${open.address}/test/other:1`);
    expect(existsSync(first.rootDir)).toBe(true);
    expect(existsSync(second.rootDir)).toBe(true);
    store.release(first.digest);
    store.release(second.digest);
    // The next ensure (of the second, now the most recently used) evicts the first and what only it referenced.
    const again = await store.ensure(`${open.address}/test/other:1`);
    expect(again.digest).toBe(second.digest);
    expect(existsSync(first.rootDir)).toBe(false);
    expect(existsSync(join(store.dir, 'blobs', 'sha256', first.digest.slice('sha256:'.length)))).toBe(false);
    expect(existsSync(join(store.dir, 'blobs', 'sha256', second.digest.slice('sha256:'.length)))).toBe(true);
    // And pulls the first again when asked.
    const back = await store.ensure(`${open.address}/test/img:1`);
    expect(readFileSync(join(back.rootDir, 'app', 'hello.txt'), 'utf8')).toBe('hello from the image\n');
    store.release(again.digest);
    store.release(back.digest);
  });

  it('stops a pull that hangs when the run is cancelled, and when it times out', async () => {
    // A "registry" that accepts connections and never answers: skopeo waits until it is killed.
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const store = freshStore();
      const controller = new AbortController();
      const pull = store.ensure(`127.0.0.1:${port}/test/img:1`, { signal: controller.signal });
      setTimeout(() => controller.abort(), 300);
      await expect(pull).rejects.toBeInstanceOf(ImagePullCancelledError);
      expect(leftovers(store)).toEqual([]);

      const impatient = new ImageStore(mkdtempSync(join(dir, 'cache-')), { timeoutMs: 300 });
      await expect(impatient.ensure(`127.0.0.1:${port}/test/img:1`)).rejects.toMatchObject({ code: 'failed', message: expect.stringContaining('timed out') });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
