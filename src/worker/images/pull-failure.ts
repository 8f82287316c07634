import { ImageError, ImageNotFoundError, ImagePullCancelledError, RegistryRefusedError, RegistryUnreachableError } from './image-errors.js';
import type { ToolFailure } from './image-tool.js';

/** Checked first: a registry with auth answers 401 for a repository that does not exist, too. */
const REFUSED = /unauthorized|authentication required|requested access to the resource is denied|denied:|\b40[13]\b|forbidden/i;
const NOT_FOUND = /manifest unknown|name unknown|not found|no such image|\b404\b|no image found in manifest list for architecture/i;
const UNREACHABLE =
  /dial tcp|connection refused|connection reset|no such host|i\/o timeout|network is unreachable|no route to host|timeout awaiting|TLS handshake|x509:|certificate|server gave HTTP response to HTTPS client|pinging container registry|EOF/i;

/** skopeo's failure as the ImageError naming `reference`. */
export function pullFailure(reference: string, failure: ToolFailure): ImageError {
  const { kind, detail } = failure;
  if (kind === 'cancelled') return new ImagePullCancelledError(reference);
  if (kind === 'timeout') return new ImageError(`getting image "${reference}" timed out`, 'failed', detail);
  if (kind === 'limit') return new ImageError(`getting image "${reference}" exceeded the image tools' limits`, 'limit', detail);
  if (REFUSED.test(detail)) return new RegistryRefusedError(reference, detail);
  if (NOT_FOUND.test(detail)) return new ImageNotFoundError(reference, detail);
  if (UNREACHABLE.test(detail)) return new RegistryUnreachableError(reference, detail);
  return new ImageError(`image "${reference}" could not be pulled`, 'failed', detail);
}

/** umoci's failure as the ImageError naming `reference`. */
export function unpackFailure(reference: string, failure: ToolFailure): ImageError {
  if (failure.kind === 'cancelled') return new ImagePullCancelledError(reference);
  const code = failure.kind === 'limit' ? 'limit' : 'failed';
  return new ImageError(`image "${reference}" could not be unpacked`, code, failure.detail);
}
