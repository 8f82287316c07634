import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * HTTP on a unix socket that a sandbox reaches (harness-support, the model
 * proxy): the handler's failures (a client hanging up mid-body included) end
 * that request only, never the worker; connections are capped; the socket is
 * 0666 because the sandbox's uid is not the worker's, so the run's token,
 * checked by the handler, is what keeps others out.
 */
export class SocketServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async start(path: string, maxConnections: number, handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<SocketServer> {
    const server = createServer((req, res) => {
      req.on('error', () => res.destroy());
      handle(req, res).catch(() => res.destroy());
    });
    server.maxConnections = maxConnections;
    rmSync(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    }).catch((error: unknown) => {
      server.close();
      throw error;
    });
    chmodSync(path, 0o666);
    return new SocketServer(server, path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
