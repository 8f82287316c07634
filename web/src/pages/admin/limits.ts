import type { CreateTeamInput } from '../../../../src/api/identity.js';

export type LimitName = keyof NonNullable<CreateTeamInput['limit_ceilings']>;

/** A team's `limit_ceilings`, as the API names them, with their labels and units. */
export const LIMITS: readonly { name: LimitName; label: string }[] = [
  { name: 'max_runtime_seconds', label: 'Max runtime (seconds)' },
  { name: 'memory_mb', label: 'Memory (MiB)' },
  { name: 'cpus', label: 'CPUs (cores, fractions allowed)' },
  { name: 'disk_mb', label: 'Disk (MiB)' },
  { name: 'output_mb', label: 'Output (MiB)' },
  { name: 'pids', label: 'Processes and threads' },
];

/** `memory_mb 2048 · cpus 2`; none: the operator's. */
export function ceilingsText(ceilings: Partial<Record<LimitName, number>>): string | null {
  const set = LIMITS.filter((l) => ceilings[l.name] !== undefined).map((l) => `${l.name} ${String(ceilings[l.name])}`);
  return set.length > 0 ? set.join(' · ') : null;
}
