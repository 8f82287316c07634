/**
 * Runs inside a sandbox, alone (Node built-ins only): a TCP listener on the
 * sandbox's own loopback that forwards every connection to the run's model
 * proxy socket (`model-bridge.mjs <socket>`), because agent CLIs speak HTTP to
 * a host and port, and a sandbox with network off has only a unix socket to
 * the worker. Prints `ready <port>` once listening.
 */
import { connect, createServer } from 'node:net';

const socketPath = process.argv[2];
if (!socketPath) {
  process.stderr.write('usage: model-bridge.mjs <unix socket>\n');
  process.exit(2);
}
const server = createServer((client) => {
  const upstream = connect(socketPath);
  client.pipe(upstream).pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : 0}\n`);
});
