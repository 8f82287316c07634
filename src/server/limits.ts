import { defaultSandboxLimits } from '../core/config.js';
import { capLimits, limitAbove, type EnvironmentLimits, type RunLimits } from '../core/environment.js';
import { OzError } from '../core/errors.js';
import type { Team } from '../core/identity.js';
import type { ServerDeps } from './deps.js';

/**
 * Per-run limits on the server (docs/sandboxes.md "Limits"): the operator's
 * defaults and ceilings (`OZ_SANDBOX_*`, `OZ_SANDBOX_MAX_*`), lowered by the
 * team's own ceilings (`limit_ceilings`, set by a platform admin). Values
 * above the effective ceiling are refused when they are written (environment
 * create and PATCH, run and schedule creation), naming the field and the
 * maximum; what a worker is handed at claim is capped again, in case a
 * ceiling was lowered after the value was written.
 */
export interface TeamLimits {
  /** The most this team's environments and runs may set. */
  maxima: RunLimits;
  /** What applies where an environment or run sets nothing (never above `maxima`). */
  defaults: RunLimits;
}

let fallback: { defaults: RunLimits; maxima: RunLimits } | null = null;

export function teamLimits(deps: Pick<ServerDeps, 'sandboxLimits'>, team: Pick<Team, 'limitCeilings'>): TeamLimits {
  const operator = deps.sandboxLimits ?? (fallback ??= defaultSandboxLimits());
  const maxima = capLimits(operator.maxima, team.limitCeilings);
  return { maxima, defaults: capLimits(operator.defaults, maxima) };
}

/** Refuse the first of `limits` above `maxima`: a 400 whose reason is `prefix` + the API field (`limits.memory_mb`). */
export function refuseAboveMaxima(limits: EnvironmentLimits, maxima: RunLimits, prefix: string, what = ''): void {
  const above = limitAbove(limits, maxima);
  if (!above) return;
  const field = `${prefix}${above.api}`;
  throw new OzError(
    'invalid_request',
    `${field}: ${what}${above.value} is above the maximum of ${above.max} for this team (the operator's OZ_SANDBOX_MAX_* or the team's limit_ceilings)`,
    { reason: field },
  );
}

/**
 * The limits a claimed run executes with: the environment's, else the team's
 * defaults, each capped by the team's current maxima; the run's own
 * `max_runtime_seconds` before the environment's.
 */
export function effectiveRunLimits(limits: TeamLimits, environment: EnvironmentLimits, runMaxRuntimeMs: number | undefined): RunLimits {
  const chosen: RunLimits = { ...limits.defaults };
  for (const key of Object.keys(chosen) as (keyof RunLimits)[]) {
    const own = environment[key];
    if (own !== undefined) chosen[key] = own;
  }
  if (runMaxRuntimeMs !== undefined) chosen.maxRuntimeMs = runMaxRuntimeMs;
  return capLimits(chosen, limits.maxima);
}
