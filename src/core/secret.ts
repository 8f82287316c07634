import type { Scope } from './environment.js';

/** What a secret is for; typed secrets reach runs as their well-known variable (docs/design.md "Secrets" 3). */
export const SECRET_TYPES = ['raw-value', 'anthropic-api-key', 'openai-api-key', 'github-token'] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

/** The variable a secret becomes in a run: its own name, or its type's variable. */
export function secretVariable(secret: { name: string; type: SecretType }): string {
  switch (secret.type) {
    case 'anthropic-api-key':
      return 'ANTHROPIC_API_KEY';
    case 'openai-api-key':
      return 'OPENAI_API_KEY';
    case 'github-token':
      return 'GITHUB_TOKEN';
    default:
      return secret.name;
  }
}

/** Values shorter than this are refused: masking them would hide innocent text. */
export const SECRET_MIN_LENGTH = 8;
/** `NAME=value` must stay under this (an environment entry the kernel accepts comfortably). */
export const SECRET_MAX_ENTRY_BYTES = 128 * 1024;

/** A secret's metadata: everything but its value, which is never readable again. */
export interface Secret {
  id: string;
  teamId: string;
  scope: Scope;
  name: string;
  type: SecretType;
  description: string | null;
  /** Reaches setup commands only, never the harness. */
  setupOnly: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A secret as stored: its value sealed (see src/secrets/envelope.ts). */
export interface SealedSecret extends Secret {
  /** AES-256-GCM of the value under the data key: base64 of iv | tag | ciphertext. */
  valueCipher: string;
  /** The data key wrapped by the master key, same layout. */
  wrappedKey: string;
}

export interface NewSecret {
  teamId: string;
  scope: Scope;
  name: string;
  type: SecretType;
  description: string | null;
  setupOnly: boolean;
  valueCipher: string;
  wrappedKey: string;
}

export interface SecretPatch {
  type?: SecretType;
  description?: string | null;
  setupOnly?: boolean;
  sealed?: { valueCipher: string; wrappedKey: string };
}
