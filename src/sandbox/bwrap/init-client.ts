import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { ExecOptions, ExecResult } from '../sandbox-backend.js';
import type { InitReply, InitRequest } from './init-protocol.js';

interface Pending {
  onOutput?: ExecOptions['onOutput'];
  resolve: (result: ExecResult | undefined) => void;
  reject: (error: Error) => void;
}

/**
 * The worker's side of the init protocol: numbers requests, routes replies to
 * them, and fails every pending request when the init goes away (the sandbox
 * died: killed, out of memory, or the namespace torn down).
 */
export class InitClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedWith: Error | null = null;
  readonly ready: Promise<number>;

  constructor(
    private readonly input: Writable,
    output: Readable,
  ) {
    let markReady: (pid: number) => void = () => {};
    let failReady: (error: Error) => void = () => {};
    this.ready = new Promise<number>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    input.on('error', () => {});
    createInterface({ input: output, crlfDelay: Infinity })
      .on('line', (line) => {
        let reply: InitReply;
        try {
          reply = JSON.parse(line) as InitReply;
        } catch {
          return;
        }
        if (reply.ev === 'ready') markReady(reply.pid);
        else this.dispatch(reply);
      })
      .on('close', () => {
        const error = new Error('the sandbox is gone');
        failReady(error);
        this.close(error);
      });
  }

  private dispatch(reply: Exclude<InitReply, { ev: 'ready' }>): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    if (reply.ev === 'out') {
      pending.onOutput?.(reply.stream, Buffer.from(reply.data, 'base64'));
      return;
    }
    this.pending.delete(reply.id);
    if (reply.ev === 'exit') pending.resolve({ exitCode: reply.code, signal: reply.signal, timedOut: reply.timedOut });
    else if (reply.ev === 'written' || reply.ev === 'signaled') pending.resolve(undefined);
    else pending.reject(new Error(reply.message));
  }

  /** Fail what is pending; later requests fail at once. */
  close(error: Error): void {
    this.closedWith ??= error;
    for (const pending of this.pending.values()) pending.reject(this.closedWith);
    this.pending.clear();
  }

  exec(argv: readonly string[], cwd: string, options: ExecOptions): Promise<ExecResult> {
    return this.request(
      (id) => ({
        op: 'exec',
        id,
        argv: [...argv],
        env: options.env,
        cwd,
        stdin: Buffer.from(options.stdin ?? '').toString('base64'),
        timeoutMs: options.timeoutMs ?? 0,
      }),
      options.onOutput,
    ) as Promise<ExecResult>;
  }

  async write(path: string, content: string, mode: number): Promise<void> {
    await this.request((id) => ({ op: 'write', id, path, data: Buffer.from(content).toString('base64'), mode }));
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (!this.closedWith) this.send({ op: 'signal', signal });
  }

  /** Signal everything but the init; resolves once the signal is sent. */
  async signalAndWait(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    await this.request((id) => ({ op: 'signal', id, signal }));
  }

  private request(make: (id: number) => InitRequest, onOutput?: ExecOptions['onOutput']): Promise<ExecResult | undefined> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { ...(onOutput ? { onOutput } : {}), resolve, reject });
      this.send(make(id));
    });
  }

  private send(request: InitRequest): void {
    this.input.write(`${JSON.stringify(request)}\n`);
  }
}
