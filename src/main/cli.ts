import { runCli } from '../cli/program.js';

/**
 * The `oz` executable's entry: the CLI, with the server's composition root
 * plugged in. The server (Fastify, the database drivers) is imported only by
 * `oz server`, so every other command starts in a fraction of the time.
 */
const code = await runCli(process.argv, {
  runServer: async (options) => (await import('./server.js')).runServer(options),
  runWorker: async (options) => (await import('./worker.js')).runWorker(options),
  rotateMasterKey: async (options) => (await import('./rotate-master-key.js')).runRotateMasterKey(options),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
});
process.exitCode = code;
