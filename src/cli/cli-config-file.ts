import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The CLI's config file: where the local server is and the key to use. 0600, in a 0700 directory. */
export interface CliConfigFile {
  server_url?: string;
  api_key?: string;
}

export function readCliConfigFile(path: string): CliConfigFile {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

/** Write atomically (temp file + rename) so a crash never leaves half a key behind. */
export function writeCliConfigFile(path: string, content: CliConfigFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}
