import { HARNESS_KEY_TYPES, isHarnessKeyType, type SealedSecret } from '../core/secret.js';
import type { HarnessType } from '../core/run.js';

export interface HarnessKeyInput {
  sealed: readonly SealedSecret[];
  creatorId: string | null;
  scheduled: boolean;
  withholdPersonal: boolean;
  harness: HarnessType;
  /** The run's allowlist (its own list, else its environment's). */
  allowlist: readonly string[];
  /** The secret `harness_auth_secrets` names for the run's harness, if any. */
  explicit: string | undefined;
}

export type HarnessKeys =
  | {
      ok: true;
      /** Names the allowlist keeps: a harness key never becomes a variable in the sandbox. */
      isHarnessKey: (name: string) => boolean;
      /** What `harness_auth` comes from: the named secret, else the allowlist's key of the run's harness. */
      authSecret: string | undefined;
      /** That secret's upstream (a `codex-api-key`'s `base_url`). */
      baseUrl: string | undefined;
    }
  | { ok: false; message: string; reason: string };

/** The secret a run's pool has under `name`, by the pool rule of src/secrets/resolve.ts: the creator's personal one shadows the team's. */
export function poolSecret(input: Pick<HarnessKeyInput, 'sealed' | 'creatorId' | 'scheduled' | 'withholdPersonal'>, name: string): SealedSecret | undefined {
  const mayUsePersonal = !input.scheduled && input.creatorId !== null && !input.withholdPersonal;
  const personal = mayUsePersonal ? input.sealed.find((s) => s.name === name && s.scope.type === 'user' && s.scope.userId === input.creatorId) : undefined;
  return personal ?? input.sealed.find((s) => s.name === name && s.scope.type === 'team');
}

/**
 * The harness keys among a run's secrets (docs/secrets.md "Harness keys"):
 * an attached `claude-api-key` is a claude run's model-proxy key, a
 * `codex-api-key` a codex run's, unless `harness_auth_secrets` names one;
 * a key of another harness is not given at all. Two keys of the run's
 * harness are an error on the run, as two secrets making one variable are.
 */
export function harnessKeys(input: HarnessKeyInput): HarnessKeys {
  const keyNames = new Set<string>();
  const ownHarness: string[] = [];
  for (const name of new Set(input.allowlist)) {
    const secret = poolSecret(input, name);
    if (!secret || !isHarnessKeyType(secret.type)) continue;
    keyNames.add(name);
    if (HARNESS_KEY_TYPES[secret.type] === input.harness) ownHarness.push(name);
  }
  if (input.explicit === undefined && ownHarness.length > 1) {
    return {
      ok: false,
      message: `The secrets ${ownHarness.join(' and ')} are both a key of the ${input.harness} harness; attach only one, or name one with harness_auth_secrets.`,
      reason: 'harness_key_conflict',
    };
  }
  const authSecret = input.explicit ?? ownHarness[0];
  const auth = authSecret !== undefined ? poolSecret(input, authSecret) : undefined;
  return { ok: true, isHarnessKey: (name) => keyNames.has(name), authSecret, baseUrl: auth?.type === 'codex-api-key' ? auth.baseUrl : undefined };
}
