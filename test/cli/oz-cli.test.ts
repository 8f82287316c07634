import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

// The real executable, as a user runs it (npm test builds dist/ first).
const ozBin = fileURLToPath(new URL('../../bin/oz.js', import.meta.url));
const dirs: string[] = [];

function oz(args: string[], env: Record<string, string> = {}) {
  const { OZ_DATABASE_URL: _ignored, ...base } = process.env;
  return spawnSync(process.execPath, [ozBin, ...args], { encoding: 'utf8', env: { ...base, ...env }, timeout: 30_000 });
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the oz executable', () => {
  it('prints help and exits 0', () => {
    const result = oz(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: oz');
    expect(result.stdout).toContain('server');
  });

  it('exits 2 on a usage error', () => {
    const result = oz(['no-such-command']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown command 'no-such-command'");
  });

  it('names the variable when the configuration is wrong', () => {
    const result = oz(['server'], { OZ_DATABASE_URL: 'mysql://nope' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('OZ_DATABASE_URL');
  });
});
