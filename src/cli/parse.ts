import { UsageError } from './usage-error.js';

/** Collect a repeatable option into an array (commander's accumulator). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function positiveInt(flag: string, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new UsageError(`${flag}: must be a whole number from 1 to ${max} (got "${value}")`);
    }
    return Number(value);
  };
}

export function oneOf<T extends string>(flag: string, allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new UsageError(`${flag}: must be one of ${allowed.join(', ')} (got "${value}")`);
    }
    return value as T;
  };
}

export function rfc3339(flag: string) {
  return (value: string): string => {
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) || Number.isNaN(Date.parse(value))) {
      throw new UsageError(`${flag}: must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z (got "${value}")`);
    }
    return value;
  };
}

/** `30d`, `12h`, `90m`, `3600s` → seconds. */
export function duration(flag: string) {
  return (value: string): number => {
    const m = /^(\d+)\s*([smhdw])$/.exec(value.trim());
    if (!m) throw new UsageError(`${flag}: must be a duration like 90m, 12h, 30d or 2w (got "${value}")`);
    const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return Number(m[1]) * unit;
  };
}
