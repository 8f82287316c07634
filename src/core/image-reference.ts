import { isIPv6 } from 'node:net';

/** A reference that is not one: `why` says what is wrong with it. */
export class ImageReferenceSyntaxError extends Error {
  constructor(
    readonly reference: string,
    readonly why: string,
  ) {
    super(`invalid image reference "${reference}": ${why}`);
  }
}

/** A parsed, fully qualified image reference. */
export interface ImageReference {
  /** What the caller wrote, for messages. */
  readonly original: string;
  /** `host[:port]` (`docker.io` for Docker Hub), as auth files key it. */
  readonly registry: string;
  /** The host alone (no port, no IPv6 brackets), for the transport policy. */
  readonly host: string;
  /** `library/node`, `test/img`. */
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string | null;
  /** The caller asked for plain HTTP (`http://` before the name). */
  readonly plainHttp: boolean;
  /** `registry/repository[:tag][@digest]`: the key of one pull. */
  readonly canonical: string;
  /** What skopeo gets after `docker://`: it refuses a tag and a digest together, and the digest is what counts. */
  readonly source: string;
}

const DOCKER_HUB = 'docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOSTNAME = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;

/** `host`, `host:port`, `[v6]` or `[v6]:port`; the host alone, or null when it is none of these. */
function registryHost(registry: string): string | null {
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(registry);
  if (v6) return isIPv6(v6[1]!) && validPort(v6[2]) ? v6[1]!.toLowerCase() : null;
  const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(registry);
  if (!match || !HOSTNAME.test(match[1]!) || !validPort(match[2])) return null;
  return match[1]!.toLowerCase();
}

function validPort(port: string | undefined): boolean {
  return port === undefined || (Number(port) > 0 && Number(port) < 65536);
}

/**
 * Parse as Docker does: a first component that has a `.` or `:` or is
 * `localhost` is a registry, otherwise the name is on Docker Hub (and a
 * single-component name there is under `library/`); no tag and no digest
 * means `latest`. `http://` in front asks for plain HTTP, which the
 * transport policy allows only for some registries.
 */
export function parseImageReference(original: string): ImageReference {
  const fail = (why: string): never => {
    throw new ImageReferenceSyntaxError(original, why);
  };
  let rest = original.trim();
  if (rest === '') fail('it is empty');
  if (rest.length > 512) fail('it is too long');
  let plainHttp = false;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(rest);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name !== 'http' && name !== 'https') fail(`unsupported scheme ${name}://`);
    plainHttp = name === 'http';
    rest = rest.slice(scheme[0].length);
  }

  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`"${digest}" is not a digest (sha256:<64 hex digits>)`);
  }

  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && !rest.slice(colon).includes(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`"${tag}" is not a valid tag`);
  }

  const slash = rest.indexOf('/');
  const first = slash === -1 ? rest : rest.slice(0, slash);
  const isRegistry = slash !== -1 && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase());
  let registry = isRegistry ? first : DOCKER_HUB;
  let repository = isRegistry ? rest.slice(slash + 1) : rest;
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  const host = registryHost(registry) ?? fail(`"${registry}" is not a registry host`);
  if (repository === '') fail('it names no repository');
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (repository.length > 255) fail('the repository name is too long');
  for (const component of repository.split('/')) {
    if (!COMPONENT.test(component)) fail(`"${component}" is not a valid name component (lower case letters, digits, separators)`);
  }

  if (tag === null && digest === null) tag = 'latest';
  const name = `${registry}/${repository}`;
  const canonical = `${name}${tag !== null ? `:${tag}` : ''}${digest !== null ? `@${digest}` : ''}`;
  const source = digest !== null ? `${name}@${digest}` : `${name}:${tag}`;
  return { original, registry, host, repository, tag, digest, plainHttp, canonical, source };
}
