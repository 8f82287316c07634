import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/**
 * A containers-auth.json with one registry's credentials, in a fresh 0700
 * directory under `parent`, written 0600: skopeo reads it through
 * `--src-authfile`, so the password is never on a command line (`ps`) nor
 * in an environment other processes of the user can read. `remove` deletes
 * it; call it whatever the pull did.
 */
export function writeAuthFile(parent: string, registry: string, credentials: RegistryCredentials): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(parent, 'auth-'));
  const path = join(dir, 'auth.json');
  const auth = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
  writeFileSync(path, JSON.stringify({ auths: { [registry]: { auth } } }), { mode: 0o600, flag: 'wx' });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
