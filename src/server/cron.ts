import { Cron } from 'croner';
import cronstrue from 'cronstrue';
import { OzError } from '../core/errors.js';

/**
 * Cron reading through croner. Only the classic five fields are accepted
 * (minute hour day-of-month month day-of-week), as Oz: croner would also take
 * a seconds field and `@daily` nicknames, which we refuse with a clear message
 * rather than accept silently. Time zones are IANA names, UTC by default.
 */
export function checkCron(expression: string, field = 'cron_schedule'): string {
  const trimmed = expression.trim().replace(/\s+/g, ' ');
  if (trimmed.startsWith('@'))
    throw new OzError('invalid_request', `${field}: nicknames like ${trimmed.split(' ')[0]} are not supported; write the five fields (e.g. "0 0 * * *" for daily)`, {
      reason: field,
    });
  const fields = trimmed.split(' ').length;
  if (fields !== 5) {
    throw new OzError('invalid_request', `${field}: must have exactly five fields (minute hour day-of-month month day-of-week), got ${fields}`, { reason: field });
  }
  try {
    new Cron(trimmed, { paused: true });
  } catch (error) {
    throw new OzError('invalid_request', `${field}: ${(error as Error).message.replace(/^CronPattern: /, '')}`, { reason: field });
  }
  return trimmed;
}

export function checkTimezone(timezone: string, field = 'timezone'): string {
  try {
    new Cron('* * * * *', { paused: true, timezone }).nextRun();
  } catch {
    throw new OzError('invalid_request', `${field}: "${timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`, { reason: field });
  }
  return timezone;
}

/** The first slot strictly after `after` (epoch ms), or null if the expression never fires again. */
export function nextSlot(expression: string, timezone: string, after: number): number | null {
  const next = new Cron(expression, { paused: true, timezone }).nextRun(new Date(after));
  return next ? next.getTime() : null;
}

/** "Every 5 minutes", "At 09:00, only on Monday": for `oz schedule list`. */
export function describeCron(expression: string): string {
  try {
    return cronstrue.toString(expression, { use24HourTimeFormat: true, verbose: false });
  } catch {
    return expression;
  }
}
