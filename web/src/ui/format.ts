import type { RunState } from '../../../src/core/run-state.js';

/** As the CLI spells states: lower case with a dash (`in-progress`). */
export function stateLabel(state: string): string {
  return state === 'INPROGRESS' ? 'in-progress' : state.toLowerCase();
}

export const TERMINAL_STATES: readonly RunState[] = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
export const isTerminal = (state: string): boolean => (TERMINAL_STATES as readonly string[]).includes(state);

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86400_000],
  ['month', 30 * 86400_000],
  ['day', 86400_000],
  ['hour', 3600_000],
  ['minute', 60_000],
  ['second', 1000],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "3 minutes ago", "in 2 hours". */
export function timeAgo(iso: string, now = Date.now()): string {
  const delta = Date.parse(iso) - now;
  for (const [unit, ms] of units) {
    if (Math.abs(delta) >= ms || unit === 'second') return relative.format(Math.round(delta / ms), unit);
  }
  return iso;
}

/** 850 ms, 12.3 s, 4m 05s, 2h 03m. */
export function duration(ms: number): string {
  if (ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export const shortId = (id: string): string => (id.length > 10 ? id.slice(0, 8) : id);

/** A link from the run's data (a pull request, the agent's markdown): http(s) only, else none. */
export const safeUrl = (url: string): string => (/^https?:\/\//i.test(url) ? url : '');
