import { EnginePullError, type EngineImages } from '../../sandbox/docker/engine-images.js';
import { ImageError, ImageNotFoundError, InvalidImageReferenceError, ImagePullCancelledError, RegistryRefusedError, RegistryUnreachableError } from './image-errors.js';
import type { EnsuredImage, EnsureOptions, ImageProvider } from './image-store.js';
import { ImageReferenceSyntaxError, parseImageReference, type ImageReference } from '../../core/image-reference.js';
import { requiresTls } from './registry-transport.js';

/** The engine's words for a pull it could not make, as the store's errors: the run's message, the engine's detail for the log. */
function pullError(reference: string, error: EnginePullError): ImageError {
  const text = error.message;
  if (/unauthorized|authentication required|denied|forbidden|no basic auth/i.test(text) || error.status === 401 || error.status === 403) {
    // "pull access denied … does not exist or may require 'docker login'": the engine cannot tell the two apart either.
    if (/does not exist/i.test(text)) return new ImageNotFoundError(reference, text);
    return new RegistryRefusedError(reference, text);
  }
  if (/manifest unknown|not found|no such image|does not exist/i.test(text) || error.status === 404) return new ImageNotFoundError(reference, text);
  if (/connection refused|no such host|timeout|i\/o timeout|dial tcp|server gave HTTP response to HTTPS client|x509|tls/i.test(text))
    return new RegistryUnreachableError(reference, text);
  return new ImageError(`could not pull image "${reference}": ${text.split('\n')[0]}`, 'failed', text);
}

/**
 * The docker backend's images, as the worker's image store offers them: the
 * engine pulls and keeps them (its own storage, shared by digest), the
 * registry-auth credentials go with the pull, failures become the store's
 * errors, so a run's message reads the same on either backend.
 */
export class EngineImageStore implements ImageProvider {
  constructor(
    private readonly engine: EngineImages,
    private readonly insecureRegistries: readonly string[] = [],
  ) {}

  async ensure(reference: string, options: EnsureOptions = {}): Promise<EnsuredImage> {
    let parsed: ImageReference;
    try {
      parsed = parseImageReference(reference);
    } catch (error) {
      if (error instanceof ImageReferenceSyntaxError) throw new InvalidImageReferenceError(reference, error.why);
      throw error;
    }
    const { registry } = parsed;
    // The same transport rule as the worker's own store; the engine itself then reaches a loopback registry over
    // plain HTTP, and any other only if its own insecure-registries lists it too (docs/sandboxes.md).
    requiresTls(parsed, this.insecureRegistries);
    try {
      const image = await this.engine.ensure(parsed.canonical, {
        auth: options.auth ? { ...options.auth, registry } : undefined,
        signal: options.signal,
      });
      return { digest: image.digest, engineImage: image.id, config: image.config, etcFile: (name) => image.etc[name] };
    } catch (error) {
      if (options.signal?.aborted) throw new ImagePullCancelledError(reference);
      if (error instanceof EnginePullError) throw pullError(reference, error);
      throw error;
    }
  }

  release(): void {
    // The engine keeps its images; the operator prunes them (docker image prune).
  }

  hold(): void {
    // Nothing to count: the engine keeps its images.
  }
}
