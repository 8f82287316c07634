import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Env } from './setting.js';

/** An XDG base directory: the variable when it is absolute (the spec ignores a relative one), else its fallback under the home directory. */
function xdgBase(env: Env, variable: string, ...underHome: string[]): string {
  const xdg = env[variable];
  return xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ...underHome);
}

/** The XDG data directory for Oz: `$XDG_DATA_HOME/oz`, else `~/.local/share/oz`. */
export function defaultDataDir(env: Env): string {
  return join(xdgBase(env, 'XDG_DATA_HOME', '.local', 'share'), 'oz');
}

/**
 * Mirrors must sit on a path the sandbox uids can search (bwrap resolves its
 * bind sources as them), so a root worker keeps them in /var/cache, not in
 * root's 0700 home.
 */
export function defaultCacheDir(env: Env): string {
  if (process.getuid?.() === 0) return '/var/cache/oz';
  return join(xdgBase(env, 'XDG_CACHE_HOME', '.cache'), 'oz');
}

/** The CLI's config file (server URL, API key): `$XDG_CONFIG_HOME/oz/config.json`, else `~/.config/oz/config.json`. */
export function cliConfigPath(env: Env): string {
  return join(xdgBase(env, 'XDG_CONFIG_HOME', '.config'), 'oz', 'config.json');
}
