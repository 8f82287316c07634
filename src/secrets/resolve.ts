import { secretVariable, type SealedSecret } from '../core/secret.js';

export interface ResolveInput {
  /** The team's secrets and the run creator's personal ones. */
  sealed: readonly SealedSecret[];
  creatorId: string | null;
  /** Scheduled runs never get personal secrets. */
  scheduled: boolean;
  /**
   * The run's environment was last changed by someone other than the run's
   * creator (its setup commands, repos or variables are not the creator's
   * own): the creator's personal secrets are withheld, and reported.
   */
  withholdPersonal?: boolean;
  /** Names the run's environment attaches. */
  environmentSecrets: readonly string[];
  /** The run's own list: replaces the environment's when given ([] = none). */
  runSecrets: readonly string[] | undefined;
  open: (secret: SealedSecret) => string;
  /** `harness_auth_secrets`: a secret whose value is the harness's key, wherever the allowlist stands. */
  harnessAuthSecret?: string;
}

export type Resolution =
  | {
      ok: true;
      env: Record<string, string>;
      setupEnv: Record<string, string>;
      unknown: string[];
      /** Allowlisted names of the creator's personal secrets not given because of `withholdPersonal` (a team secret of the name, if any, is used). */
      withheld: string[];
      harnessAuth?: string;
    }
  | { ok: false; message: string; reason: string };

/**
 * The five rules of docs/design.md "Secrets", at run start on the server:
 * 1. the pool is the team's secrets plus the creator's personal ones (not for
 *    scheduled runs, nor on an environment someone else changed last), a
 *    personal secret shadowing a team one of its name;
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
  const personal = new Set<string>();
  if (!input.scheduled && input.creatorId) {
    for (const secret of input.sealed) {
      if (secret.scope.type !== 'user' || secret.scope.userId !== input.creatorId) continue;
      personal.add(secret.name);
      if (!input.withholdPersonal) pool.set(secret.name, secret);
    }
  }
  const allowlist = [...new Set(input.runSecrets ?? input.environmentSecrets)];
  const withheld = input.withholdPersonal ? allowlist.filter((name) => personal.has(name)) : [];
  const unknown = allowlist.filter((name) => !pool.has(name) && !withheld.includes(name));
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
    if (!secret && input.withholdPersonal && personal.has(input.harnessAuthSecret)) {
      return {
        ok: false,
        message: `harness_auth_secrets: ${input.harnessAuthSecret} is the run creator's personal secret, and the run's environment was last changed by someone else, so it is not given to this run; save the environment yourself, or use a team secret.`,
        reason: 'personal_secret_withheld',
      };
    }
    if (!secret) {
      return {
        ok: false,
        message: `harness_auth_secrets: no secret named ${input.harnessAuthSecret} in the team's or the run creator's secrets.`,
        reason: 'harness_auth_secret_not_found',
      };
    }
    try {
      harnessAuth = input.open(secret);
    } catch {
      return { ok: false, message: `The secret ${secret.name} could not be opened: its sealed value does not belong to it (tampered with or moved).`, reason: 'secret_unreadable' };
    }
  }
  return { ok: true, env, setupEnv, unknown, withheld, ...(harnessAuth !== undefined ? { harnessAuth } : {}) };
}
