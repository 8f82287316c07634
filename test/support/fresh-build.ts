import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Source files whose build in dist/ is missing or older than they are. */
function staleSources(): string[] {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = join(ROOT, 'dist', relative(join(ROOT, 'src'), path)).replace(/\.ts$/, '.js');
        try {
          if (statSync(built).mtimeMs < statSync(path).mtimeMs) stale.push(path);
        } catch {
          stale.push(path);
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  return stale;
}

/** Whether the dashboard's build (dist/web) is missing or older than a file of web/. */
function staleDashboard(): boolean {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(ROOT, 'web'));
  try {
    return statSync(join(ROOT, 'dist', 'web', 'index.html')).mtimeMs < newest;
  } catch {
    return true;
  }
}

function buildDashboard(): void {
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  process.stderr.write('[oz tests] dist/web is older than web/: building the dashboard\n');
  try {
    // NODE_ENV=production: under vitest it is "test", and Vite would then bundle React's development build.
    execFileSync(process.execPath, [vite, 'build', '--config', join(ROOT, 'web', 'vite.config.ts'), '--logLevel', 'error'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_ENV: 'production' },
    });
  } catch (error) {
    const output = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    throw new Error(`the dashboard's build failed, so its browser tests cannot run:\n${output}`);
  }
}

/**
 * Vitest global setup: process-level tests run bin/oz.js, which runs dist/.
 * A suite started after editing src/ must never test the old build, so a
 * stale or missing build is rebuilt here, before any test starts (the fast
 * tier, which imports src/ directly, skips it: OZ_TEST_TIER=fast).
 */
export default function setup(): void {
  if (process.env.OZ_TEST_TIER === 'fast') return;
  if (staleDashboard()) buildDashboard();
  const stale = staleSources();
  if (stale.length === 0) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  process.stderr.write(`[oz tests] dist/ is older than ${stale.length} source file(s) (e.g. ${relative(ROOT, stale[0] as string)}): building\n`);
  try {
    execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const output = (error as { stdout?: Buffer }).stdout?.toString() ?? String(error);
    throw new Error(`the build failed, so the process-level tests cannot run:\n${output}`);
  }
}
