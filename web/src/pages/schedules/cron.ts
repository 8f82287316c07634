import { Cron } from 'croner';
import cronstrue from 'cronstrue';

/**
 * Reading a cron expression in the browser, for previews only: the server
 * (croner and cronstrue too, src/server/cron.ts) decides what is valid, and
 * its `cron_description` and `history.next_run` are what a schedule shows.
 */

/** Five fields, no nickname: what the server takes (anything else gets no preview; the API says why). */
function fiveFields(expression: string): string | null {
  const trimmed = expression.trim().replace(/\s+/g, ' ');
  if (!trimmed || trimmed.startsWith('@') || trimmed.split(' ').length !== 5) return null;
  return trimmed;
}

/** "At 03:00, only on Monday"; null when it cannot be read. */
export function describeCron(expression: string): string | null {
  const cron = fiveFields(expression);
  if (!cron) return null;
  try {
    return cronstrue.toString(cron, { use24HourTimeFormat: true, verbose: false });
  } catch {
    return null;
  }
}

/** The next `count` slots after `after` (default now) in the time zone; none when either cannot be read. */
export function upcoming(expression: string, timezone: string, count: number, after?: Date): Date[] {
  const cron = fiveFields(expression);
  if (!cron) return [];
  try {
    return new Cron(cron, { paused: true, timezone: timezone.trim() || 'UTC' }).nextRuns(count, after);
  } catch {
    return [];
  }
}

/** "Mon, 12 Jan 2026, 09:00 CET": a time as the schedule's time zone reads it (the browser's when that is unknown). */
export function inZone(time: Date | string, timezone: string): string {
  const date = typeof time === 'string' ? new Date(time) : time;
  const options: Intl.DateTimeFormatOptions = { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' };
  try {
    return date.toLocaleString(undefined, { ...options, timeZone: timezone });
  } catch {
    return date.toLocaleString(undefined, options);
  }
}

/** The IANA zones the browser knows, for the time zone field's suggestions. */
export function timeZones(): string[] {
  try {
    const zones = Intl.supportedValuesOf('timeZone');
    return zones.includes('UTC') ? zones : ['UTC', ...zones];
  } catch {
    return ['UTC'];
  }
}

export function browserTimeZone(): string | null {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
}
