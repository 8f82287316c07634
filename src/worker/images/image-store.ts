import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAuthFile, type RegistryCredentials } from './auth-file.js';
import { readImageConfig, type ImageRuntimeConfig } from './image-config.js';
import { ImageError, ImagePullCancelledError, InvalidImageReferenceError } from './image-errors.js';
import { ImageReferenceSyntaxError, parseImageReference, type ImageReference } from '../../core/image-reference.js';
import { DEFAULT_IMAGE_TOOL_LIMITS, DEFAULT_IMAGE_TOOL_TIMEOUT_MS, type ImageToolLimits } from './image-tool-limits.js';
import { ImageTool, ToolFailed } from './image-tool.js';
import { pullFailure, unpackFailure } from './pull-failure.js';
import { requiresTls } from './registry-transport.js';
import { rootsToEvict, type StoredRoot } from './image-eviction.js';
import { diskUsage } from '../../sandbox/bwrap/disk-usage.js';
import { readImageFile } from './image-user.js';

/** An image ready to start a sandbox on. */
export interface EnsuredImage {
  /** The image manifest's digest (for a multi-platform image: this host's platform's). */
  digest: string;
  /** The unpacked root filesystem; shared by every run on the image, so the sandbox binds it read-only (this store's images). */
  rootDir?: string;
  /** The container engine's image id (an engine's images: src/worker/images/engine-image-store.ts). */
  engineImage?: string;
  config: ImageRuntimeConfig;
  /** The image's `/etc/passwd` or `/etc/group`, or null where it has none (for its `USER`). */
  etcFile(name: 'passwd' | 'group'): string | null;
}

/** An image of this store: unpacked on the worker's disk. */
export type StoredImage = EnsuredImage & { rootDir: string };

/** Where a run's image comes from: this store, or the container engine that runs it. */
export interface ImageProvider {
  ensure(reference: string, options?: EnsureOptions): Promise<EnsuredImage>;
  /** A run on the image ended (it may be evicted once no run holds it). */
  release(digest: string): void;
  /** One more holder of an image `ensure` gave (a spare sandbox on it), until its own `release`. */
  hold(digest: string): void;
}

export interface EnsureOptions {
  auth?: RegistryCredentials | undefined;
  /** The run's cancellation: stops skopeo or umoci, rejects with an ImagePullCancelledError. */
  signal?: AbortSignal | undefined;
}

export interface ImageStoreOptions {
  /** Registries (`host` or `host:port`) reached without TLS although not loopback: the operator's choice, never a run's. */
  insecureRegistries?: readonly string[];
  limits?: Partial<ImageToolLimits>;
  timeoutMs?: number;
  /** The unpacked roots' total size the store keeps (least recently used evicted past it); default unlimited. */
  maxBytes?: number;
}

const MANIFEST_DIGEST = /^sha256:[a-f0-9]{64}$/;
/** The tag inside each pull's own OCI layout (one image per layout). */
const LAYOUT_TAG = 'image';
/** Trusts what the registry serves (digests are checked); signature policies are for later. */
const POLICY = JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] });

/** The reference parsed, or the store's own error for a malformed one. */
function parseReference(reference: string): ImageReference {
  try {
    return parseImageReference(reference);
  } catch (error) {
    if (error instanceof ImageReferenceSyntaxError) throw new InvalidImageReferenceError(reference, error.why);
    throw error;
  }
}

/** Write `path` so it is either absent or whole: a temp file beside it, renamed over it. */
function writeWhole(path: string, content: string): void {
  const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(temp, content);
  renameSync(temp, path);
}

function exists(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EEXIST' || code === 'ENOTEMPTY';
}

/**
 * OCI images in the worker's cache directory (`<cacheDir>/images`):
 *
 * - `blobs/sha256/` every layer, config and manifest once, by digest, shared
 *   by all pulls (skopeo's `--dest-shared-blob-dir`, so a second image on the
 *   same base fetches only its own layers);
 * - `roots/<manifest digest>/` each image unpacked once (umoci, rootless:
 *   no device nodes, files owned by the worker user), the directory a
 *   sandbox starts on;
 * - `configs/<manifest digest>.json` its runtime config;
 * - `refs/` which manifest a reference resolved to, so a second `ensure`
 *   of the same reference makes no request to the registry;
 * - `tmp/` pulls and unpacks in progress. Everything is written there and
 *   renamed into place last, so a crash mid-pull never leaves a root that
 *   looks complete.
 */
export class ImageStore implements ImageProvider {
  readonly dir: string;
  private readonly tool: ImageTool;
  private readonly insecureRegistries: readonly string[];
  /** Pulls under way, by reference and credentials: each with its own cancellation and its callers still waiting. */
  private readonly inFlight = new Map<string, { promise: Promise<StoredImage>; controller: AbortController; waiting: number }>();
  private readonly policyFile: string;
  private readonly registriesConf: string;
  private readonly registriesDir: string;
  private readonly maxBytes: number;
  /** Roots live runs use, by digest, with how many: never evicted. */
  private readonly inUse = new Map<string, number>();

  constructor(cacheDir: string, options: ImageStoreOptions = {}) {
    this.dir = join(cacheDir, 'images');
    this.tool = new ImageTool({ ...DEFAULT_IMAGE_TOOL_LIMITS, ...options.limits }, options.timeoutMs ?? DEFAULT_IMAGE_TOOL_TIMEOUT_MS);
    this.insecureRegistries = options.insecureRegistries ?? [];
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    for (const sub of ['blobs/sha256', 'roots', 'configs', 'refs', 'usage', 'tmp', 'etc/registries.d']) mkdirSync(join(this.dir, sub), { recursive: true, mode: 0o700 });
    // skopeo's own configuration, not the host's: no registry mirrors, short-name aliases or signature stores we did not choose.
    this.policyFile = join(this.dir, 'etc', 'policy.json');
    this.registriesConf = join(this.dir, 'etc', 'registries.conf');
    this.registriesDir = join(this.dir, 'etc', 'registries.d');
    writeWhole(this.policyFile, POLICY);
    writeWhole(this.registriesConf, '');
    this.removeAbandoned(2 * (options.timeoutMs ?? DEFAULT_IMAGE_TOOL_TIMEOUT_MS));
  }

  /** Pulls a crashed worker left in `tmp/`: older than any pull can run, so no live one (of this or another worker on the cache) is touched. */
  private removeAbandoned(olderThanMs: number): void {
    const tmp = join(this.dir, 'tmp');
    for (const entry of readdirSync(tmp)) {
      try {
        if (Date.now() - statSync(join(tmp, entry)).mtimeMs > olderThanMs) rmSync(join(tmp, entry), { recursive: true, force: true });
      } catch {
        // Gone meanwhile.
      }
    }
  }

  /**
   * The image `reference` names, pulled and unpacked if this store does not
   * have it yet. Concurrent calls for the same reference share one pull;
   * different images pull in parallel. Rejects with an ImageError.
   */
  async ensure(reference: string, options: EnsureOptions = {}): Promise<StoredImage> {
    const image = await this.find(reference, options);
    // The caller's until it releases it: counted before eviction runs, so a root just pulled is never the one to go.
    this.inUse.set(image.digest, (this.inUse.get(image.digest) ?? 0) + 1);
    this.touch(image.digest);
    this.evict();
    return image;
  }

  hold(digest: string): void {
    this.inUse.set(digest, (this.inUse.get(digest) ?? 0) + 1);
  }

  /** A run is done with the image `ensure` gave it: its root may be evicted again. */
  release(digest: string): void {
    const count = (this.inUse.get(digest) ?? 0) - 1;
    if (count > 0) this.inUse.set(digest, count);
    else this.inUse.delete(digest);
  }

  private usageFile(digest: string): string {
    return join(this.dir, 'usage', `${digest}.json`);
  }

  /** The root's last use is its usage file's mtime. */
  private touch(digest: string): void {
    try {
      const now = new Date();
      utimesSync(this.usageFile(digest), now, now);
    } catch {
      // A root unpacked before the store kept usage: measured at the next eviction.
    }
  }

  /** Past `maxBytes`, remove the least recently used roots no live run uses, with what only they referenced. */
  private evict(): void {
    // A pull under way may count on a shared blob that only an evicted image names: evict between pulls.
    if (!Number.isFinite(this.maxBytes) || this.inFlight.size > 0) return;
    const roots: StoredRoot[] = [];
    const all = readdirSync(join(this.dir, 'roots')).filter((name) => MANIFEST_DIGEST.test(name));
    for (const name of all) {
      try {
        const file = this.usageFile(name);
        const { bytes } = JSON.parse(readFileSync(file, 'utf8')) as { bytes: number };
        roots.push({ digest: name, bytes, lastUsedMs: statSync(file).mtimeMs });
      } catch {
        // Not measured (being renamed into place, or from an older store): left alone.
      }
    }
    const evicted = rootsToEvict(roots, new Set(this.inUse.keys()), this.maxBytes);
    if (evicted.length === 0) return;
    const gone = new Set(evicted);
    for (const entry of readdirSync(join(this.dir, 'refs'))) {
      try {
        const { digest } = JSON.parse(readFileSync(join(this.dir, 'refs', entry), 'utf8')) as { digest: string };
        if (gone.has(digest)) rmSync(join(this.dir, 'refs', entry), { force: true });
      } catch {
        // Half-written or gone.
      }
    }
    const kept = new Set(all.filter((digest) => !gone.has(digest)).flatMap((digest) => this.blobsOf(digest)));
    for (const digest of evicted) {
      const blobs = this.blobsOf(digest);
      rmSync(join(this.dir, 'roots', digest), { recursive: true, force: true });
      rmSync(join(this.dir, 'configs', `${digest}.json`), { force: true });
      rmSync(this.usageFile(digest), { force: true });
      for (const blob of blobs) if (!kept.has(blob)) rmSync(join(this.dir, 'blobs', 'sha256', blob.slice('sha256:'.length)), { force: true });
    }
  }

  /** The blobs an image's manifest names (itself, its config, its layers). */
  private blobsOf(digest: string): string[] {
    try {
      const manifest = JSON.parse(readFileSync(join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8')) as {
        config?: { digest?: unknown };
        layers?: { digest?: unknown }[];
      };
      return [digest, manifest.config?.digest, ...(manifest.layers ?? []).map((layer) => layer.digest)].filter(
        (blob): blob is string => typeof blob === 'string' && MANIFEST_DIGEST.test(blob),
      );
    } catch {
      return [digest];
    }
  }

  private async find(reference: string, options: EnsureOptions): Promise<StoredImage> {
    // Both throw before anything touches the network or the disk.
    const parsed = parseReference(reference);
    const tls = requiresTls(parsed, this.insecureRegistries);
    // A reference pulled with credentials is another caller's only with the same credentials:
    // a run that cannot read a private image must not get it from the cache or a shared pull.
    const key = accessKey(parsed, options.auth);
    const cached = this.cached(key);
    if (cached) return cached;
    let flight = this.inFlight.get(key);
    if (!flight) {
      const controller = new AbortController();
      const promise = this.pull(parsed, tls, { ...options, signal: controller.signal }, key).finally(() => this.inFlight.delete(key));
      flight = { promise, controller, waiting: 0 };
      this.inFlight.set(key, flight);
    }
    return this.waitFor(flight, parsed, options.signal);
  }

  /** Wait for a shared pull; a caller that is cancelled stops waiting, and the pull stops once nobody waits. */
  private waitFor(
    flight: { promise: Promise<StoredImage>; controller: AbortController; waiting: number },
    reference: ImageReference,
    signal: AbortSignal | undefined,
  ): Promise<StoredImage> {
    flight.waiting += 1;
    /** Stop waiting; the last one to leave stops the pull and waits for it to clean up, so it leaves nothing behind. */
    const leave = async (): Promise<never> => {
      flight.waiting -= 1;
      if (flight.waiting === 0) {
        flight.controller.abort();
        await flight.promise.catch(() => undefined);
      }
      throw new ImagePullCancelledError(reference.original);
    };
    if (!signal) return flight.promise.finally(() => (flight.waiting -= 1));
    if (signal.aborted) return leave();
    return new Promise<StoredImage>((resolve, reject) => {
      const onAbort = (): void => void leave().catch(reject);
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (image) => {
          signal.removeEventListener('abort', onAbort);
          flight.waiting -= 1;
          resolve(image);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          flight.waiting -= 1;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  private refFile(key: string): string {
    return join(this.dir, 'refs', `${createHash('sha256').update(key).digest('hex')}.json`);
  }

  private complete(digest: string): StoredImage | null {
    const rootDir = join(this.dir, 'roots', digest);
    const configFile = join(this.dir, 'configs', `${digest}.json`);
    if (!existsSync(rootDir) || !existsSync(configFile)) return null;
    return { digest, rootDir, config: JSON.parse(readFileSync(configFile, 'utf8')) as ImageRuntimeConfig, etcFile: (name) => readImageFile(rootDir, ['etc', name]) };
  }

  private cached(key: string): StoredImage | null {
    try {
      const { digest } = JSON.parse(readFileSync(this.refFile(key), 'utf8')) as { digest: string };
      return MANIFEST_DIGEST.test(digest) ? this.complete(digest) : null;
    } catch {
      return null;
    }
  }

  private async pull(reference: ImageReference, tls: boolean, options: EnsureOptions, key: string): Promise<StoredImage> {
    const work = mkdtempSync(join(this.dir, 'tmp', 'pull-'));
    const auth = options.auth ? writeAuthFile(work, reference.registry, options.auth) : null;
    try {
      const layout = join(work, 'layout');
      const blobs = join(this.dir, 'blobs');
      const args = ['--policy', this.policyFile, '--registries-conf', this.registriesConf, '--registries.d', this.registriesDir, 'copy', '--quiet', `--src-tls-verify=${tls}`];
      args.push(...(auth ? ['--src-authfile', auth.path] : ['--src-no-creds']));
      args.push('--dest-shared-blob-dir', blobs, `docker://${reference.source}`, `oci:${layout}:${LAYOUT_TAG}`);
      await this.tool.run('skopeo', args, { signal: options.signal, tmpDir: work }).catch((error: unknown) => {
        throw error instanceof ToolFailed ? pullFailure(reference.original, error.failure) : error;
      });
      auth?.remove();

      const digest = this.manifestDigest(reference, layout);
      const image = this.complete(digest) ?? (await this.unpack(reference, work, layout, blobs, digest, options.signal));
      writeWhole(this.refFile(key), JSON.stringify({ reference: reference.canonical, digest }));
      return image;
    } finally {
      auth?.remove();
      rmSync(work, { recursive: true, force: true });
    }
  }

  private manifestDigest(reference: ImageReference, layout: string): string {
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests?: { digest?: unknown }[] };
    const digest = index.manifests?.[0]?.digest;
    if (index.manifests?.length !== 1 || typeof digest !== 'string' || !MANIFEST_DIGEST.test(digest)) {
      throw new ImageError(`image "${reference.original}" could not be pulled`, 'failed', 'skopeo left no single sha256 manifest in the layout');
    }
    return digest;
  }

  private async unpack(reference: ImageReference, work: string, layout: string, blobs: string, digest: string, signal: AbortSignal | undefined): Promise<StoredImage> {
    // skopeo wrote every blob to the shared directory; umoci reads the layout's own `blobs/`.
    rmSync(join(layout, 'blobs'), { recursive: true, force: true });
    symlinkSync(blobs, join(layout, 'blobs'));
    const config = (() => {
      try {
        return readImageConfig(blobs, digest);
      } catch (error) {
        throw new ImageError(`image "${reference.original}" has an invalid config`, 'failed', (error as Error).message);
      }
    })();
    const root = join(work, 'root');
    await this.tool.run('umoci', ['raw', 'unpack', '--rootless', '--image', `${layout}:${LAYOUT_TAG}`, root], { signal, tmpDir: work }).catch((error: unknown) => {
      throw error instanceof ToolFailed ? unpackFailure(reference.original, error.failure) : error;
    });
    writeWhole(join(this.dir, 'configs', `${digest}.json`), JSON.stringify(config));
    const { bytes } = await diskUsage(root, { stopAboveBytes: Number.MAX_SAFE_INTEGER, maxEntries: Number.MAX_SAFE_INTEGER });
    writeWhole(this.usageFile(digest), JSON.stringify({ bytes }));
    const rootDir = join(this.dir, 'roots', digest);
    try {
      renameSync(root, rootDir);
    } catch (error) {
      // Another pull (another reference to the same manifest, another worker on this cache) finished first: its root is as good.
      if (!exists(error)) throw error;
    }
    return { digest, rootDir, config, etcFile: (name) => readImageFile(rootDir, ['etc', name]) };
  }
}

/**
 * What a cached or shared pull is keyed by: the reference, and who may read
 * it — anonymous, or a hash of the registry credentials (never the
 * credentials themselves, which would then sit in a file name).
 */
function accessKey(reference: ImageReference, auth: RegistryCredentials | undefined): string {
  const who = auth ? createHash('sha256').update(`${reference.registry}\0${auth.username}\0${auth.password}`).digest('hex') : 'anonymous';
  return `${reference.canonical}\0${who}`;
}
