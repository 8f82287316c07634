import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * The process's logger, on stderr: one readable line per event when stderr is
 * a terminal (a person is watching), JSON lines otherwise (a collector is).
 */
export function createLogger(level: string, isTty: boolean = Boolean(process.stderr.isTTY)): Logger {
  const options = { level, redact: ['req.headers.authorization'] };
  if (!isTty) return pino(options, pino.destination(2));
  return pino(options, pretty({ destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,reqId', singleLine: true, sync: true }));
}
