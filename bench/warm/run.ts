/**
 * Warm starts: time from create to INPROGRESS for an environment whose setup
 * installs real dependencies (`npm ci` of a small project from the package
 * registry this machine reaches, network on), cold (a fresh snapshot key each
 * time) and warm (the snapshot of the same key), against a baseline measured
 * in the same run: the same repository with no setup at all.
 *
 * The real server runs as a process from dist/ (npm run build first), with its
 * embedded bwrap worker, as root. The registry's address is read from the npm
 * configuration at run time and given to the sandbox as `npm_config_registry`;
 * npm's cache is the run's own /tmp, so every cold `npm ci` downloads.
 * State times are the server's `state_timestamps`, relative to `created_at`.
 *
 *   npm run build && npx tsx bench/warm/run.ts
 *
 * Dispatch of a warm environment with a large checkout is bench/dispatch/warm-repo.ts.
 *
 * Sizes: OZ_BENCH_COLD (default 3), OZ_BENCH_WARM (default 10), OZ_BENCH_BASE (default 10).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBareRepo } from '../../test/support/git-fixtures.js';
import { call } from '../support.js';
import { startOzServer, type OzServerHandle } from '../../test/support/oz-server-process.js';

const COLD = count('OZ_BENCH_COLD', 3);
const WARM = count('OZ_BENCH_WARM', 10);
const BASE = count('OZ_BENCH_BASE', 10);
const RUN_TIMEOUT_MS = 300_000;

function count(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

interface RunItem {
  run_id: string;
  state: string;
  created_at: string;
  state_timestamps: Partial<Record<string, string>>;
  status_message?: unknown;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One run on `environmentId`, to its end: ms from created_at to INPROGRESS. */
async function timedRun(server: OzServerHandle, environmentId: string, prompt = 'test -d node_modules/zod'): Promise<number> {
  const { run_id: id } = await call<{ run_id: string }>(server, 'POST', '/api/v1/agent/runs', {
    prompt,
    config: { harness: { type: 'command' }, environment_id: environmentId },
  });
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const run = await call<RunItem>(server, 'GET', `/api/v1/agent/runs/${id}`);
    if (run.state === 'SUCCEEDED') {
      const at = run.state_timestamps.INPROGRESS;
      if (!at) throw new Error(`run ${id}: no INPROGRESS time in ${JSON.stringify(run.state_timestamps)}`);
      return Date.parse(at) - Date.parse(run.created_at);
    }
    if (['FAILED', 'ERROR', 'CANCELLED'].includes(run.state)) throw new Error(`run ${id} ended ${run.state}: ${JSON.stringify(run.status_message)}`);
    if (Date.now() > deadline) throw new Error(`run ${id} did not end in time`);
    await sleep(20);
  }
}

function p50(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('warm starts need a root worker: run as root');
  const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'oz-bench-warm-'));
  chmodSync(dir, 0o755);
  let server: OzServerHandle | null = null;
  try {
    // A real project's dependencies (a web app's, with its tool chain): its lock file resolved now, from the same registry.
    const manifest = {
      name: 'bench-app',
      version: '1.0.0',
      private: true,
      dependencies: { express: '^5.1.0', react: '^19.0.0', 'react-dom': '^19.0.0', lodash: '^4.17.21', zod: '^4.0.0', commander: '^14.0.0', pino: '^9.0.0' },
      devDependencies: { typescript: '~5.9.0', eslint: '^9.0.0', prettier: '^3.0.0' },
    };
    const scratch = join(dir, 'scratch');
    execFileSync('mkdir', ['-p', scratch]);
    writeFileSync(join(scratch, 'package.json'), JSON.stringify(manifest, null, 2));
    execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: scratch, stdio: 'ignore' });
    const lock = execFileSync('cat', [join(scratch, 'package-lock.json')], { encoding: 'utf8' });
    const repos = join(dir, 'repos');
    const url = makeBareRepo(repos, 'bench-app', {
      'package.json': JSON.stringify(manifest, null, 2),
      'package-lock.json': lock,
      'README.md': '# bench\n',
      '.gitignore': 'node_modules/\n',
    });
    server = await startOzServer('sqlite', { args: ['--backend', 'bwrap'], env: { OZ_FILE_REPO_ROOTS: repos } });
    const env = (extra: Record<string, unknown>): Promise<{ uid: string }> =>
      call(server as OzServerHandle, 'POST', '/api/v1/agent/environments', {
        name: `bench-${Math.random().toString(36).slice(2, 8)}`,
        repos: [{ url }],
        network: 'on',
        env: { npm_config_registry: registry, npm_config_cache: '/tmp/npm-cache', npm_config_update_notifier: 'false' },
        ...extra,
      });
    const setup = ['npm ci --no-audit --no-fund --ignore-scripts'];
    const base = await env({});
    const baseline: number[] = [];
    for (let i = 0; i < BASE; i++) baseline.push(await timedRun(server, base.uid, 'true'));
    const cold: number[] = [];
    // Each cold run its own key (another variable): nothing to start from.
    for (let i = 0; i < COLD; i++) {
      const fresh = await env({
        setup_commands: setup,
        env: { npm_config_registry: registry, npm_config_cache: '/tmp/npm-cache', npm_config_update_notifier: 'false', BENCH_COLD: String(i) },
      });
      cold.push(await timedRun(server, fresh.uid));
    }
    const warmEnv = await env({ setup_commands: setup });
    await timedRun(server, warmEnv.uid); // keeps the snapshot
    const warm: number[] = [];
    for (let i = 0; i < WARM; i++) warm.push(await timedRun(server, warmEnv.uid));

    const b = p50(baseline);
    const c = p50(cold);
    const w = p50(warm);
    process.stdout.write(
      [
        `warm starts (${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)})`,
        `create → INPROGRESS p50, ms: no setup ${b.toFixed(0)} (n=${BASE}), cold npm ci ${c.toFixed(0)} (n=${COLD}), warm ${w.toFixed(0)} (n=${WARM})`,
        `cold / warm = ${(c / w).toFixed(1)}x; warm - no setup = ${(w - b).toFixed(0)} ms`,
        `samples: no setup [${baseline.map((x) => x.toFixed(0)).join(', ')}]`,
        `         cold [${cold.map((x) => x.toFixed(0)).join(', ')}]`,
        `         warm [${warm.map((x) => x.toFixed(0)).join(', ')}]`,
        '',
      ].join('\n'),
    );
  } finally {
    if (server) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
