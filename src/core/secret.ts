import type { Scope } from './environment.js';
import type { HarnessType } from './run.js';

/**
 * What a secret is for; typed secrets reach runs as their well-known variable (docs/design.md "Secrets" 3).
 * `claude-api-key` / `codex-api-key` are a harness's key (docs/secrets.md "Harness keys"): never a
 * variable in the sandbox, only the model proxy's key for that harness's runs.
 */
export const SECRET_TYPES = ['raw-value', 'anthropic-api-key', 'openai-api-key', 'github-token', 'claude-api-key', 'codex-api-key', 'registry-auth'] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

/** The harness whose key each harness-key type is. */
export const HARNESS_KEY_TYPES = { 'claude-api-key': 'claude', 'codex-api-key': 'codex' } as const satisfies Partial<Record<SecretType, HarnessType>>;
export type HarnessKeyType = keyof typeof HARNESS_KEY_TYPES;

export function isHarnessKeyType(type: SecretType): type is HarnessKeyType {
  return Object.hasOwn(HARNESS_KEY_TYPES, type);
}

/**
 * A `registry-auth` secret's value: `username:password` for the registry of
 * the environment's image (docs/secrets.md "Registry credentials"). Never a
 * variable in the sandbox: the worker gives it to its image pull only.
 */
export const REGISTRY_AUTH_TYPE = 'registry-auth' satisfies SecretType;

/** `username:password` split at the first colon; null when it is not one (no user, no password, or a line break). */
export function parseRegistryAuth(value: string): { username: string; password: string } | null {
  const at = value.indexOf(':');
  if (at <= 0 || at === value.length - 1 || /[\r\n]/.test(value)) return null;
  return { username: value.slice(0, at), password: value.slice(at + 1) };
}

/** Only a `codex-api-key` names an upstream (an OpenAI-compatible server); the others call the provider the worker calls. */
export const BASE_URL_TYPES: readonly SecretType[] = ['codex-api-key'];

/**
 * The variable a secret becomes in a run: its own name, or its type's variable.
 * A harness key becomes none; its variable is the one its CLI reads, which
 * holds the run's proxy token in the sandbox while the proxy holds the key.
 */
export function secretVariable(secret: { name: string; type: SecretType }): string {
  switch (secret.type) {
    case 'anthropic-api-key':
    case 'claude-api-key':
      return 'ANTHROPIC_API_KEY';
    case 'openai-api-key':
    case 'codex-api-key':
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
  /** A `codex-api-key`'s upstream (`https://host/v1`); absent = the worker's OpenAI endpoint. */
  baseUrl?: string;
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
  baseUrl?: string;
  valueCipher: string;
  wrappedKey: string;
}

export interface SecretPatch {
  type?: SecretType;
  description?: string | null;
  setupOnly?: boolean;
  /** null removes it. */
  baseUrl?: string | null;
  sealed?: { valueCipher: string; wrappedKey: string };
}
