import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

/** Podman's Docker-compatible API service on a socket of the test's own, stopped by its pid. */
export interface PodmanService {
  /** What DOCKER_HOST is set to for the worker. */
  dockerHost: string;
  stop(): Promise<void>;
}

/** Why Podman's API service cannot be used here, or null. */
export function podmanMissing(): string | null {
  if (process.getuid?.() !== 0) return "needs root (a rootful Podman, like the docker backend's engine)";
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return null;
  } catch {
    return 'podman is not installed (apt-get install podman)';
  }
}

export async function startPodmanService(): Promise<PodmanService> {
  const dir = mkdtempSync(join(tmpdir(), 'oz-podman-'));
  const socket = join(dir, 'podman.sock');
  const child: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await until('the podman service socket', () => existsSync(socket), 20_000);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dockerHost: `unix://${socket}`,
    stop: async () => {
      child.kill('SIGTERM');
      const killed = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killed);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
