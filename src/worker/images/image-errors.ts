/**
 * What went wrong getting an image, for callers that word it for the run's
 * user or decide whether to retry: the reference is malformed, the transport
 * it asks for is not allowed, the image does not exist, the registry refused
 * (401/403), the registry could not be reached, a limit was hit, the run was
 * cancelled, anything else.
 */
export type ImageErrorCode = 'invalid_reference' | 'insecure_transport' | 'not_found' | 'refused' | 'unreachable' | 'limit' | 'cancelled' | 'failed';

/** An image could not be made available; the message names the image, `detail` is the tool's own words for the worker's log. */
export class ImageError extends Error {
  constructor(
    message: string,
    readonly code: ImageErrorCode = 'failed',
    readonly detail: string = message,
  ) {
    super(message);
  }
}

export class InvalidImageReferenceError extends ImageError {
  constructor(reference: string, why: string) {
    super(`invalid image reference "${reference}": ${why}`, 'invalid_reference');
  }
}

/** Plain HTTP to a registry that is neither loopback nor listed as insecure: refused before any connection. */
export class InsecureRegistryError extends ImageError {
  constructor(reference: string, registry: string) {
    super(`image "${reference}": registry ${registry} would be reached without TLS, and it is neither loopback nor listed in OZ_INSECURE_REGISTRIES`, 'insecure_transport');
  }
}

export class ImageNotFoundError extends ImageError {
  constructor(reference: string, detail: string) {
    super(`image "${reference}" does not exist`, 'not_found', detail);
  }
}

export class RegistryRefusedError extends ImageError {
  constructor(reference: string, detail: string) {
    super(`the registry refused access to image "${reference}" (missing or wrong credentials)`, 'refused', detail);
  }
}

/** No detail to the run's user: a closed port, a name that does not resolve and a TLS failure look alike. */
export class RegistryUnreachableError extends ImageError {
  constructor(reference: string, detail: string) {
    super(`the registry of image "${reference}" could not be reached`, 'unreachable', detail);
  }
}

export class ImagePullCancelledError extends ImageError {
  constructor(reference: string) {
    super(`getting image "${reference}" was cancelled`, 'cancelled');
  }
}
