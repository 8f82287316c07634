import { createHash } from 'node:crypto';
import { randomToken } from '../core/ids.js';

/**
 * Bearer credentials: a recognisable prefix (`oz_` API keys, `ozw_` worker
 * tokens) plus 32 random bytes. Only the SHA-256 is stored — the secret has
 * 256 bits of entropy, so a fast hash is enough (no password stretching) — and
 * the first characters are kept as a `prefix` to tell keys apart in listings.
 */
export interface MintedCredential {
  secret: string;
  prefix: string;
  secretHash: string;
}

export const API_KEY_PREFIX = 'oz_';
export const WORKER_TOKEN_PREFIX = 'ozw_';

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function mintCredential(kind: typeof API_KEY_PREFIX | typeof WORKER_TOKEN_PREFIX): MintedCredential {
  const secret = `${kind}${randomToken(32)}`;
  return { secret, prefix: secret.slice(0, kind.length + 6), secretHash: hashSecret(secret) };
}
