import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunCgroup } from '../../sandbox/bwrap/cgroups.js';
import { SYSTEM_PATH } from '../../core/system-path.js';
import { hostGitCgroup, onPath, prlimitArgs } from '../git-limits.js';
import { DEFAULT_IMAGE_TOOL_TIMEOUT_MS, type ImageToolLimits } from './image-tool-limits.js';

/** How one tool run ended when it did not succeed; the store turns it into an ImageError naming the image. */
export interface ToolFailure {
  kind: 'cancelled' | 'timeout' | 'limit' | 'failed';
  /** The tool's last lines of stderr (or why it was stopped). */
  detail: string;
}

export class ToolFailed extends Error {
  constructor(readonly failure: ToolFailure) {
    super(failure.detail);
  }
}

/**
 * Joins the cgroups named before `--`, then execs the rest (same pid), as
 * host git's launcher: nothing forks outside them. SIGXFSZ ignored, so a
 * write past the file size limit fails with EFBIG and the tool says so.
 */
const LAUNCHER = "trap '' XFSZ; " + 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 111; shift; done; shift; exec "$@"';

/**
 * No inherited environment: none of the worker user's registry credentials
 * (`~/.docker/config.json`, `$XDG_RUNTIME_DIR/containers/auth.json`,
 * `REGISTRY_AUTH_FILE`), configuration or proxies reach the tools.
 */
const TOOL_ENV = { PATH: SYSTEM_PATH, LANG: 'C.UTF-8', HOME: '/nonexistent' };

function removeSoon(cgroup: RunCgroup, attempt = 0): void {
  cgroup.remove();
  if (attempt < 20 && cgroup.procsFiles.some((file) => existsSync(dirname(file)))) setTimeout(() => removeSoon(cgroup, attempt + 1), 100 * (attempt + 1)).unref();
}

function lastLines(stderr: string): string {
  return stderr
    .trim()
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .slice(-3)
    .join(' ');
}

export interface ToolRunOptions {
  signal?: AbortSignal | undefined;
  /** The directory the tool runs in and keeps its temporary files in. */
  tmpDir: string;
}

/** Runs skopeo and umoci under {@link ImageToolLimits}, a timeout and the caller's abort signal. */
export class ImageTool {
  constructor(
    readonly limits: ImageToolLimits,
    readonly timeoutMs: number = DEFAULT_IMAGE_TOOL_TIMEOUT_MS,
  ) {
    for (const tool of ['prlimit', 'skopeo', 'umoci']) {
      if (!onPath(tool, SYSTEM_PATH)) throw new Error(`${tool} is not installed (Debian: apt-get install ${tool === 'prlimit' ? 'util-linux' : tool}): the image store needs it`);
    }
  }

  /** Run `command args…`; resolves on exit 0, rejects with a ToolFailed. */
  run(command: 'skopeo' | 'umoci', args: string[], options: ToolRunOptions): Promise<void> {
    const { signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ToolFailed({ kind: 'cancelled', detail: 'cancelled' }));
      let cgroup: RunCgroup | null;
      try {
        cgroup = hostGitCgroup(this.limits);
      } catch (error) {
        return reject(new ToolFailed({ kind: 'failed', detail: `could not make a cgroup for ${command}: ${(error as Error).message}` }));
      }
      const argv = ['-c', LAUNCHER, `oz-${command}`, ...(cgroup?.procsFiles ?? []), '--', 'prlimit', ...prlimitArgs(this.limits), '--', command, ...args];
      // Its own process group, so a kill reaches every process it started.
      const child = spawn('/bin/sh', argv, { env: { ...TOOL_ENV, TMPDIR: options.tmpDir }, cwd: options.tmpDir, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8192)));
      let stopped: ToolFailure | null = null;
      const kill = (reason: ToolFailure): void => {
        stopped ??= reason;
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const onAbort = (): void => kill({ kind: 'cancelled', detail: 'cancelled' });
      const timer = setTimeout(() => kill({ kind: 'timeout', detail: `${command} timed out after ${Math.round(this.timeoutMs / 1000)} s` }), this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (failure: ToolFailure | null): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (cgroup) removeSoon(cgroup);
        if (failure) reject(new ToolFailed(failure));
        else resolve();
      };
      child.once('error', (error) => done({ kind: 'failed', detail: error.message }));
      child.once('close', (code, exitSignal) => {
        if (stopped) return done(stopped);
        if (code === 0) return done(null);
        const detail = lastLines(stderr) || (exitSignal ? `${command} was killed by ${exitSignal}` : `${command} exited with ${code}`);
        const limited =
          (cgroup?.oomKills() ?? 0) > 0 ||
          (cgroup?.pidsRefused() ?? 0) > 0 ||
          exitSignal === 'SIGXCPU' ||
          exitSignal === 'SIGXFSZ' ||
          /out of memory|cannot allocate memory|file too large|resource temporarily unavailable/i.test(stderr);
        done({ kind: limited ? 'limit' : 'failed', detail });
      });
    });
  }
}
