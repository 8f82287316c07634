import type { Logger } from 'pino';
import { CommandHarness } from '../agent/command/command-harness.js';
import type { Harness } from '../agent/harness.js';
import type { OzConfig } from '../core/config.js';
import { DirectBackend } from '../sandbox/direct/direct-backend.js';
import type { SandboxBackend } from '../sandbox/sandbox-backend.js';
import { ProtocolClient } from '../worker/protocol-client.js';
import { Worker } from '../worker/worker.js';

export const BACKENDS = ['direct'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** What every run's processes start from: never the worker's own environment (it holds credentials). */
const BASE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
};

function backendNamed(name: BackendName, logger: Logger): SandboxBackend {
  // Only `direct` exists until the bubblewrap backend lands; it isolates nothing.
  logger.warn(
    `sandbox backend "${name}": runs execute WITHOUT isolation, as this worker's user, on this host. Use only with trusted prompts and code.`,
  );
  return new DirectBackend();
}

/** Build a worker that talks to `serverUrl` with `token` (the composition roots' one way to make one). */
export function buildWorker(args: { serverUrl: string; token: string; backend: BackendName; config: OzConfig; logger: Logger; concurrency?: number }): Worker {
  const harnesses = new Map<string, Harness>([['command', new CommandHarness()]]);
  const client = new ProtocolClient(args.serverUrl, args.token);
  return new Worker(
    {
      client,
      backend: backendNamed(args.backend, args.logger),
      harnesses,
      logger: args.logger,
      killGraceMs: args.config.killGraceMs,
      maxOutputBytes: args.config.maxOutputBytes,
      baseEnv: BASE_ENV,
    },
    { concurrency: args.concurrency ?? args.config.workerConcurrency },
    args.logger,
  );
}
