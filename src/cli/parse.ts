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

/** A whole number from `min` to `max` (0 is allowed when `min` is 0, unlike {@link positiveInt}). */
export function wholeNumber(flag: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`${flag}: must be a whole number from ${min} to ${max} (got "${value}")`);
    }
    return Number(value);
  };
}

/**
 * A repeatable `KEY=VALUE` flag collected into an object (`--branch
 * acme/web=main`): split at the last `=`, both sides non-empty, a key at most once.
 */
export function keyValue(flag: string, form: string) {
  return (value: string, previous: Record<string, string> = {}): Record<string, string> => {
    const at = value.lastIndexOf('=');
    const key = at < 0 ? '' : value.slice(0, at).trim();
    const val = at < 0 ? '' : value.slice(at + 1).trim();
    if (key === '' || val === '') throw new UsageError(`${flag}: must be ${form} with both sides non-empty (got "${value}")`);
    if (Object.hasOwn(previous, key)) throw new UsageError(`${flag}: ${key} is given twice`);
    return { ...previous, [key]: val };
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

/** How a spelling is compared: case, dashes, underscores and spaces do not matter (`in-progress`, `INPROGRESS`, `in_progress`). */
function enumKey(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/[-_\s]/g, '');
}

/** Oz's spelling of an API enum value: lower case, dashed (`SCHEDULED_AGENT` → `scheduled-agent`). */
export function dashed(value: string): string {
  return value.toLowerCase().replace(/_/g, '-');
}

/**
 * An enum flag as Oz spells it: its lower-case dashed spellings (`--source
 * scheduled-agent`, `--sort-by created-at`), with the API's upper-case or
 * underscore ones kept as aliases. Returns the API's value; an error lists
 * the dashed spellings. `spellings` names the values whose Oz spelling is not
 * simply dashed (`INPROGRESS` → `in-progress`).
 */
export function enumOption<T extends string>(flag: string, values: readonly T[], spellings: { readonly [V in T]?: string } = {}) {
  const shown = values.map((v) => spellings[v] ?? dashed(v));
  const byKey = new Map<string, T>();
  values.forEach((v, i) => {
    byKey.set(enumKey(v), v);
    byKey.set(enumKey(shown[i] ?? v), v);
  });
  const parse = (value: string): T => {
    const found = byKey.get(enumKey(value));
    if (found === undefined) throw new UsageError(`${flag}: must be one of ${shown.join(', ')} (got "${value}")`);
    return found;
  };
  return Object.assign(parse, {
    /** The spellings, for help texts. */
    choices: shown,
    /** The same, repeatable: each value parsed, collected in order. */
    repeatable: (value: string, previous: T[] = []): T[] => [...previous, parse(value)],
  });
}
