import type { Logger } from 'pino';

/**
 * The last line of defence of a long-lived process (server, worker): an
 * unhandled rejection or an uncaught exception is logged and the process goes
 * on. One run's bug must not end every team's in-flight runs with
 * `worker_lost`; the code paths that can fail are meant to handle their
 * errors themselves, and this guard logs loudly when one did not.
 */
export function guardProcess(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection (a bug: the process goes on)');
  });
  process.on('uncaughtException', (error, origin) => {
    logger.error({ err: error, origin }, 'uncaught exception (a bug: the process goes on)');
  });
}
