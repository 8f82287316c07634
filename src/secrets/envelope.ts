import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Envelope encryption of secret values (docs/design.md "Secrets"): a fresh data key
 * per value (AES-256-GCM), wrapped by the master key. Associated data binds
 * both to the secret's owner and name, so a ciphertext copied onto another row
 * fails to open. Node's crypto does this well; no library is needed.
 */
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const MASTER_KEY_BYTES = 32;

export class SealError extends Error {}

function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

function open(key: Buffer, sealed: string, aad: string): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new SealError('sealed value is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SealError('the sealed value does not open with this key for this owner and name');
  }
}

/** Who a secret belongs to and what it is called: the associated data of both layers. */
export interface SecretIdentity {
  teamId: string;
  /** '' for a team secret, else the owning user's id. */
  ownerUserId: string;
  name: string;
}

function aad(identity: SecretIdentity, layer: 'value' | 'key'): string {
  return ['oz-secret-v1', layer, identity.teamId, identity.ownerUserId, identity.name].join('\0');
}

export interface Sealed {
  valueCipher: string;
  wrappedKey: string;
}

export class Envelope {
  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== MASTER_KEY_BYTES) throw new Error(`the master key must be ${MASTER_KEY_BYTES} bytes`);
  }

  seal(identity: SecretIdentity, value: string): Sealed {
    const dataKey = randomBytes(32);
    try {
      return { valueCipher: seal(dataKey, Buffer.from(value, 'utf8'), aad(identity, 'value')), wrappedKey: seal(this.masterKey, dataKey, aad(identity, 'key')) };
    } finally {
      dataKey.fill(0);
    }
  }

  open(identity: SecretIdentity, sealed: Sealed): string {
    const dataKey = open(this.masterKey, sealed.wrappedKey, aad(identity, 'key'));
    try {
      return open(dataKey, sealed.valueCipher, aad(identity, 'value')).toString('utf8');
    } finally {
      dataKey.fill(0);
    }
  }

  /** Re-wrap a data key under another master key (rotation); the value's ciphertext is unchanged. */
  rewrap(identity: SecretIdentity, wrappedKey: string, next: Envelope): string {
    const dataKey = open(this.masterKey, wrappedKey, aad(identity, 'key'));
    try {
      return seal(next.masterKey, dataKey, aad(identity, 'key'));
    } finally {
      dataKey.fill(0);
    }
  }

  /** A value only this master key opens: stored once, checked at start (a wrong key stops the server). */
  verifier(): string {
    return seal(this.masterKey, Buffer.from('oz-master-key-check'), 'oz-master-key-verifier');
  }

  verifies(verifier: string): boolean {
    try {
      return open(this.masterKey, verifier, 'oz-master-key-verifier').toString() === 'oz-master-key-check';
    } catch {
      return false;
    }
  }
}
