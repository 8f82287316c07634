import { isLoopbackHost } from '../../core/loopback-host.js';
import { InsecureRegistryError } from './image-errors.js';
import type { ImageReference } from '../../core/image-reference.js';

/**
 * Whether skopeo must verify TLS for this reference. Loopback registries and
 * the operator's `insecureRegistries` (`host` or `host:port`) are reached
 * without it; every other registry needs TLS, and a reference that asks for
 * plain HTTP to one is refused here, before any name is resolved or any
 * connection made.
 */
export function requiresTls(reference: ImageReference, insecureRegistries: readonly string[]): boolean {
  const listed = insecureRegistries.some((entry) => {
    const wanted = entry.trim().toLowerCase();
    return wanted === reference.registry.toLowerCase() || wanted === reference.host;
  });
  if (isLoopbackHost(reference.host) || listed) return false;
  if (reference.plainHttp) throw new InsecureRegistryError(reference.original, reference.registry);
  return true;
}
