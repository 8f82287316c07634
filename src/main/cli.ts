import { runCli } from '../cli/program.js';
import { runServer } from './server.js';

/** The `oz` executable's entry: the CLI, with the server's composition root plugged in. */
const code = await runCli(process.argv, {
  runServer: (options) => runServer(options),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
});
process.exitCode = code;
