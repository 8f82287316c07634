import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

/** A command's absolute path on `path` (a `PATH` value), or null. */
export function onPath(command: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir && existsSync(join(dir, command))) return resolve(dir, command);
  }
  return null;
}
