import { createLogger } from './logger.js';
import { guardProcess } from './process-guard.js';
import type { WorkerCommandOptions } from '../cli/program.js';
import { TOKEN_FLAG_WARNING, resolveWorkerToken } from '../cli/worker-token.js';
import { loadWorkerCommand } from '../core/config.js';
import { OzError } from '../core/errors.js';
import { prepareWorker } from './build-worker.js';
import { isLoopbackHost } from '../core/loopback-host.js';

/**
 * `oz worker`: a standalone worker. Speaks only the worker protocol; refuses
 * plain HTTP to another machine (the token would travel in clear) unless told
 * otherwise. SIGTERM drains: no new claims, running runs get the grace period,
 * then are cancelled; exit 0. The token comes from `--token-file` or
 * `OZ_WORKER_TOKEN`; `--token` still works, with a warning once the worker
 * is ready (a refusal stays one line). Only the worker's settings are read: a
 * server's variable in this environment, even a bad one, is not its concern.
 */
export async function runWorker(options: WorkerCommandOptions): Promise<void> {
  const { config, launch } = loadWorkerCommand(options.settings);
  const { token, source } = resolveWorkerToken(options, launch.workerToken);
  let url: URL;
  try {
    url = new URL(options.server);
  } catch {
    throw new OzError('invalid_request', `--server: "${options.server}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OzError('invalid_request', '--server: must be http:// or https://');
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !options.allowInsecureHttp) {
    throw new OzError('invalid_request', `--server: ${options.server} is plain HTTP to another machine; use https:// or pass --allow-insecure-http`);
  }
  const logger = createLogger(config.logLevel);
  guardProcess(logger);
  const worker = (await prepareWorker({ token, backend: launch.sandboxBackend, config, logger }))(url.toString());
  if (source === 'flag') process.stderr.write(TOKEN_FLAG_WARNING);
  worker.start();
  // The handlers before the line that says the worker is up (whoever reads it may signal at once).
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal, activeRuns: worker.activeRuns }, 'draining');
      void worker.drain(config.drainGraceMs).finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const labels = config.workerLabels.length > 0 ? `, labels ${config.workerLabels.join(',')}` : '';
  process.stdout.write(
    `Oz worker ${worker.id} serving ${url.origin} (name ${config.workerName}${labels}, concurrency ${config.workerConcurrency}, backend ${launch.sandboxBackend})\n`,
  );
  await stopped;
}
