import { REGISTRY_AUTH_TYPE, type SealedSecret } from '../core/secret.js';
import { poolSecret } from './harness-keys.js';

export interface RegistryAuthInput {
  sealed: readonly SealedSecret[];
  creatorId: string | null;
  scheduled: boolean;
  withholdPersonal: boolean;
  /** The run's allowlist (its own list, else its environment's). */
  allowlist: readonly string[];
}

export type RegistryAuth =
  | {
      ok: true;
      /** Names the allowlist keeps out of the variables: registry credentials never enter the sandbox. */
      isRegistryAuth: (name: string) => boolean;
      /** The one `registry-auth` secret attached, if any: the credentials of the environment's image pull. */
      secret: SealedSecret | undefined;
    }
  | { ok: false; message: string; reason: string };

/**
 * The registry credentials among a run's secrets (docs/secrets.md "Registry
 * credentials"): an attached `registry-auth` secret is what the worker pulls
 * the environment's image with, by the same pool rule as every secret (the
 * creator's personal one shadows the team's). Two are an error on the run,
 * as two secrets making one variable are.
 */
export function registryAuth(input: RegistryAuthInput): RegistryAuth {
  const names: string[] = [];
  let secret: SealedSecret | undefined;
  for (const name of new Set(input.allowlist)) {
    const found = poolSecret(input, name);
    if (found?.type !== REGISTRY_AUTH_TYPE) continue;
    names.push(name);
    secret = found;
  }
  if (names.length > 1) {
    return { ok: false, message: `The secrets ${names.join(' and ')} are both registry credentials; attach only one registry-auth secret.`, reason: 'registry_auth_conflict' };
  }
  return { ok: true, isRegistryAuth: (name) => names.includes(name), secret };
}
