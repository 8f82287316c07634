import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { OzError } from './errors.js';

/**
 * Configuration: the only module that reads the process environment. It is
 * read once, validated, and frozen; composition roots pass it down. Errors
 * name both the flag and the environment variable.
 */
export interface OzConfig {
  /** Where the embedded store and its lock live (`--data-dir` / `OZ_DATA_DIR`). */
  readonly dataDir: string;
  /** `postgres://…` to use PostgreSQL instead of the embedded SQLite (`OZ_DATABASE_URL`). */
  readonly databaseUrl: string | null;
  /** Lease length for claimed runs (`OZ_LEASE_TTL_MS`). */
  readonly leaseTtlMs: number;
}

export interface ConfigOverrides {
  dataDir?: string;
  databaseUrl?: string;
}

type Env = Record<string, string | undefined>;

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

const positiveMs = z.coerce.number().int().min(1000).max(24 * 3600 * 1000);

/** The XDG data directory for Oz: `$XDG_DATA_HOME/oz`, else `~/.local/share/oz`. */
export function defaultDataDir(env: Env): string {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.local', 'share');
  return join(base, 'oz');
}

function check<T>(schema: z.ZodType<T>, value: unknown, flag: string, envVar: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => i.message).join('; ');
    throw new OzError('invalid_request', `${flag} / ${envVar}: ${why} (got ${JSON.stringify(value)})`, {
      reason: envVar,
    });
  }
  return parsed.data;
}

/** Read and validate the configuration. `env` defaults to the process environment. */
export function loadConfig(overrides: ConfigOverrides = {}, env: Env = process.env): OzConfig {
  const dataDirRaw = overrides.dataDir ?? env.OZ_DATA_DIR;
  const dataDir = dataDirRaw
    ? resolve(check(z.string().min(1, 'must not be empty'), dataDirRaw, '--data-dir', 'OZ_DATA_DIR'))
    : defaultDataDir(env);
  const urlRaw = overrides.databaseUrl ?? env.OZ_DATABASE_URL;
  const databaseUrl = urlRaw ? check(postgresUrl, urlRaw, '--database-url', 'OZ_DATABASE_URL') : null;
  const leaseTtlMs =
    env.OZ_LEASE_TTL_MS === undefined
      ? 30_000
      : check(positiveMs, env.OZ_LEASE_TTL_MS, '--lease-ttl-ms', 'OZ_LEASE_TTL_MS');
  return Object.freeze({ dataDir, databaseUrl, leaseTtlMs });
}
