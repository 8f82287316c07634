import { runCli } from '../cli/program.js';

/**
 * The `oz` executable's entry: the CLI, with the server's composition root
 * plugged in. The server (Fastify, the database drivers) is imported only by
 * `oz server`, so every other command starts in a fraction of the time.
 */
// A reader that stops early (`oz run list | head`) closes the pipe: the output is no longer
// wanted, so the command ends quietly, as other Unix tools do, not with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  throw error;
});

const code = await runCli(process.argv, {
  runServer: async (options) => (await import('./server.js')).runServer(options),
  runWorker: async (options) => (await import('./worker.js')).runWorker(options),
  rotateMasterKey: async (options) => (await import('./rotate-master-key.js')).runRotateMasterKey(options),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
});
process.exitCode = code;
