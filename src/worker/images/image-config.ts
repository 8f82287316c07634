import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** What a sandbox started on an image needs from the image's config (OCI image config `config`). */
export interface ImageRuntimeConfig {
  /** `NAME=value` entries, in the image's order. */
  env: string[];
  workingDir: string | null;
  user: string | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
}

/** Manifests and configs are small; a registry's multi-megabyte "config" is not read into memory. */
const MAX_JSON_BYTES = 4 * 1024 * 1024;
const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** A blob of the OCI layout whose blob directory is `blobsDir`, parsed as JSON. */
function readBlobJson(blobsDir: string, digest: unknown): unknown {
  const match = typeof digest === 'string' ? DIGEST.exec(digest) : null;
  if (!match) throw new Error(`not a sha256 digest: ${String(digest)}`);
  const fd = openSync(join(blobsDir, 'sha256', match[1]!), 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_JSON_BYTES) throw new Error(`blob ${match[0]} is ${size} bytes, more than a manifest or config may be`);
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return JSON.parse(buffer.subarray(0, read).toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

function stringList(value: unknown, field: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new Error(`image config ${field} is not a list of strings`);
  return value;
}

function optionalString(value: unknown, field: string): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new Error(`image config ${field} is not a string`);
  return value;
}

/** The runtime config of the image whose manifest is `manifestDigest`, from its config blob; what the registry sent is checked field by field. */
export function readImageConfig(blobsDir: string, manifestDigest: string): ImageRuntimeConfig {
  const manifest = readBlobJson(blobsDir, manifestDigest) as { config?: { digest?: unknown } } | null;
  const image = readBlobJson(blobsDir, manifest?.config?.digest) as { config?: Record<string, unknown> } | null;
  const config = image?.config ?? {};
  return {
    env: stringList(config.Env, 'Env') ?? [],
    workingDir: optionalString(config.WorkingDir, 'WorkingDir'),
    user: optionalString(config.User, 'User'),
    entrypoint: stringList(config.Entrypoint, 'Entrypoint'),
    cmd: stringList(config.Cmd, 'Cmd'),
  };
}
