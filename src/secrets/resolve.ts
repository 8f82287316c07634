import { secretVariable, type SealedSecret } from '../core/secret.js';

export interface ResolveInput {
  /** The team's secrets and the run creator's personal ones. */
  sealed: readonly SealedSecret[];
  creatorId: string | null;
  /** Scheduled runs never get personal secrets. */
  scheduled: boolean;
  /** Names the run's environment attaches. */
  environmentSecrets: readonly string[];
  /** The run's own list: replaces the environment's when given ([] = none). */
  runSecrets: readonly string[] | undefined;
  open: (secret: SealedSecret) => string;
  /** `harness_auth_secrets`: a secret whose value is the harness's key, wherever the allowlist stands. */
  harnessAuthSecret?: string;
}

export type Resolution =
  | { ok: true; env: Record<string, string>; setupEnv: Record<string, string>; unknown: string[]; harnessAuth?: string }
  | { ok: false; message: string; reason: string };

/**
 * The five rules of DESIGN.md "Secrets", at run start on the server:
 * 1. the pool is the team's secrets plus the creator's personal ones (not for
 *    scheduled runs), a personal secret shadowing a team one of its name;
 * 2. the allowlist is the run's own list when given, else the environment's
 *    attached names; names not in the pool are reported, not fatal;
 * 3. typed secrets become their variable, and two secrets making one
 *    variable are an error on the run;
 * 4. reserved names never get here (refused when the secret was made);
 * 5. setup-only secrets go to the setup commands alone.
 */
export function resolveSecrets(input: ResolveInput): Resolution {
  const pool = new Map<string, SealedSecret>();
  for (const secret of input.sealed) if (secret.scope.type === 'team') pool.set(secret.name, secret);
  if (!input.scheduled && input.creatorId) {
    for (const secret of input.sealed) if (secret.scope.type === 'user' && secret.scope.userId === input.creatorId) pool.set(secret.name, secret);
  }
  const allowlist = [...new Set(input.runSecrets ?? input.environmentSecrets)];
  const unknown = allowlist.filter((name) => !pool.has(name));
  const env: Record<string, string> = {};
  const setupEnv: Record<string, string> = {};
  const madeBy = new Map<string, string>();
  for (const name of allowlist) {
    const secret = pool.get(name);
    if (!secret) continue;
    const variable = secretVariable(secret);
    const other = madeBy.get(variable);
    if (other !== undefined) {
      return { ok: false, message: `The secrets ${other} and ${name} would both set ${variable}; attach only one of them.`, reason: 'secret_variable_conflict' };
    }
    madeBy.set(variable, name);
    let value: string;
    try {
      value = input.open(secret);
    } catch {
      return { ok: false, message: `The secret ${name} could not be opened: its sealed value does not belong to it (tampered with or moved).`, reason: 'secret_unreadable' };
    }
    (secret.setupOnly ? setupEnv : env)[variable] = value;
  }
  let harnessAuth: string | undefined;
  if (input.harnessAuthSecret !== undefined) {
    const secret = pool.get(input.harnessAuthSecret);
    if (!secret) {
      return { ok: false, message: `harness_auth_secrets: no secret named ${input.harnessAuthSecret} in the team's or the run creator's secrets.`, reason: 'harness_auth_secret_not_found' };
    }
    try {
      harnessAuth = input.open(secret);
    } catch {
      return { ok: false, message: `The secret ${secret.name} could not be opened: its sealed value does not belong to it (tampered with or moved).`, reason: 'secret_unreadable' };
    }
  }
  return { ok: true, env, setupEnv, unknown, ...(harnessAuth !== undefined ? { harnessAuth } : {}) };
}
