import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../scripts/prepare-host.mjs', import.meta.url));

/** `npm start`'s first step: the sandbox tools, installed or named; never a silent fall-back to no isolation. */
describe('the first start on a machine', () => {
  it('passes at once where the sandbox tools are installed', () => {
    const result = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  });

  it.skipIf(process.getuid?.() !== 0)('without them and without root, stops and says exactly what to install', () => {
    const empty = mkdtempSync(join(tmpdir(), 'oz-empty-path-'));
    try {
      // The checkout may sit below a directory that user cannot search: a copy of the script it can read.
      chmodSync(empty, 0o755);
      const script = join(empty, 'prepare-host.mjs');
      copyFileSync(SCRIPT, script);
      chmodSync(script, 0o644);
      // As an unprivileged user with nothing on PATH: nothing can be installed, so nothing may start.
      const result = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', `PATH=${empty}`, process.execPath, script], { encoding: 'utf8' });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('the sandbox backend needs bubblewrap');
      expect(result.stderr).toContain('bwrap, slirp4netns, setpriv, prlimit');
      expect(result.stderr).toContain('WITHOUT isolation');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
