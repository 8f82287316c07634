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
 * A `registry-auth` secret's value: `registry/username:password`, the
 * credentials of one registry (`ghcr.io`, `127.0.0.1:5000`, `docker.io`;
 * docs/secrets.md "Registry credentials"). The registry is part of the
 * value, so the credentials go to no other registry, and nobody who cannot
 * give the value again can point them elsewhere. Never a variable in the
 * sandbox: the worker gives it to its image pull only.
 */
export const REGISTRY_AUTH_TYPE = 'registry-auth' satisfies SecretType;

const REGISTRY_AUTH = /^((?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?)\/([^:/\s]+):([^\r\n]+)$/;
/** Docker Hub's other names, as image references name it. */
const DOCKER_HUB_NAMES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** `registry/username:password`, the registry as image references name it; null when it is not one. */
export function parseRegistryAuth(value: string): { registry: string; username: string; password: string } | null {
  const match = REGISTRY_AUTH.exec(value);
  if (!match) return null;
  const host = (match[1] as string).toLowerCase();
  return { registry: DOCKER_HUB_NAMES.has(host) ? 'docker.io' : host, username: match[2] as string, password: match[3] as string };
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
