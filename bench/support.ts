/**
 * What every benchmark under bench/ shares: integer parameters from the
 * environment, cleanups that also run on Ctrl-C and on a watchdog, nearest-rank
 * statistics, plain-text tables, and the admin's API calls to a server.
 */

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** An integer parameter from the environment (`min` 1 unless given). */
export function intFromEnv(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: expected an integer of at least ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const cleanups: Array<{ name: string; fn: () => Promise<void> | void }> = [];
let cleaning: Promise<void> | null = null;

/** Something to undo at the end; cleanups run in reverse order, each given 15 s. */
export function onCleanup(name: string, fn: () => Promise<void> | void): void {
  cleanups.push({ name, fn });
}

/** Run what is registered so far; callers at the same time share one pass, a later call runs what was added since. */
export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    for (let entry = cleanups.pop(); entry; entry = cleanups.pop()) {
      try {
        await withTimeout(Promise.resolve(entry.fn()), 15_000, entry.name);
      } catch (error) {
        console.error(`cleanup "${entry.name}" failed: ${String(error)}`);
      }
    }
  })().finally(() => {
    cleaning = null;
  });
  return cleaning;
}

/** Clean up, then exit with `code`. */
export function abort(reason: string, code: number): void {
  console.error(`\nbench: ${reason}; cleaning up`);
  void runCleanups().finally(() => process.exit(code));
}

/** Clean up and exit on Ctrl-C, SIGTERM, or a run that outlives `watchdogMs` (a hang). */
export function guard(watchdogMs: number): void {
  setTimeout(() => abort(`still running after ${watchdogMs / 60_000} minutes`, 2), watchdogMs).unref();
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));
}

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles. */
export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
  const sum = sorted.reduce((acc, x) => acc + x, 0);
  return { n: sorted.length, p50: rank(0.5), p95: rank(0.95), min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN, mean: sum / sorted.length };
}

/** Milliseconds with two, one or no decimals as they grow; `–` for none. */
export const ms = (x: number): string => (Number.isNaN(x) ? '–' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));

export function table(title: string, header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (rightAligned[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [title, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function progress(message: string): void {
  process.stderr.write(`  … ${message}\n`);
}

/** The admin's JSON request to a benchmark's server; throws on a status other than 2xx, with the body. */
export async function call<T>(server: { url: string; adminKey: string }, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** A command's trimmed standard output, or `?` when it fails (for the machine notes a bench prints). */
export function command(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

/** A module of the built code (`dist/`), typed by its source; a missing build says so. */
export async function fromDist<T>(path: string): Promise<T> {
  const url = new URL(`../dist/${path}`, import.meta.url);
  if (!existsSync(url)) throw new Error(`${url.pathname} is missing: run npm run build first`);
  return (await import(url.href)) as T;
}
