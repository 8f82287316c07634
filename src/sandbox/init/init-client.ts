import { RunFailure } from '../../core/run-failure.js';
import type { Readable, Writable } from 'node:stream';
import type { ExecOptions, ExecResult } from '../sandbox-backend.js';
import type { InitRequest } from './init-protocol.js';
import { parseInitReply, type ParsedReply } from './init-reply.js';

interface Pending {
  onOutput?: ExecOptions['onOutput'];
  resolve: (result: ExecResult | undefined) => void;
  reject: (error: Error) => void;
}

/**
 * The longest reply line accepted. The init sends output in chunks of at
 * most 64 KiB (base64: ~88 KiB); anything much longer is not the init talking.
 */
export const MAX_REPLY_LINE = 1024 * 1024;

/**
 * The worker's side of the init protocol: numbers requests, routes replies to
 * them, and fails every pending request when the init goes away (the sandbox
 * died: killed, out of memory, or the namespace torn down).
 *
 * The init runs as the sandbox user, so whatever runs in the sandbox can take
 * it over (ptrace is filtered, /proc/<pid>/mem is not): every reply is
 * untrusted input. A reply that does not parse, does not fit the protocol,
 * names a request never made or exceeds {@link MAX_REPLY_LINE} ends the
 * conversation as if the sandbox had died (`onViolation` lets the sandbox
 * kill itself), never the worker.
 */
export class InitClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedWith: Error | null = null;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  readonly ready: Promise<number>;
  private markReady: (pid: number) => void = () => {};
  private failReady: (error: Error) => void = () => {};

  constructor(
    private readonly input: Writable,
    output: Readable,
    private readonly onViolation: (reason: string) => void = () => {},
  ) {
    this.ready = new Promise<number>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    this.ready.catch(() => {});
    input.on('error', () => {});
    output.on('data', (chunk: Buffer) => this.receive(chunk));
    output.on('error', () => {});
    output.on('close', () => this.close(RunFailure.sandboxLost('its init exited')));
  }

  /** Split into lines by hand: readline would buffer an endless line whole. */
  private receive(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1 && !this.closedWith; newline = chunk.indexOf(10, start)) {
      this.buffered.push(chunk.subarray(start, newline));
      const line = Buffer.concat(this.buffered).toString('utf8');
      this.buffered = [];
      this.bufferedBytes = 0;
      start = newline + 1;
      if (line.length > MAX_REPLY_LINE) return this.violation('a reply line is too long');
      this.handle(line);
    }
    if (this.closedWith || start >= chunk.length) return;
    this.buffered.push(chunk.subarray(start));
    this.bufferedBytes += chunk.length - start;
    if (this.bufferedBytes > MAX_REPLY_LINE) this.violation('a reply line is too long');
  }

  private handle(line: string): void {
    if (!line.trim()) return;
    const reply = parseInitReply(line);
    if (!reply) return this.violation('a reply does not follow the protocol');
    if (reply.ev === 'ready') {
      this.markReady(reply.pid);
      return;
    }
    const pending = this.pending.get(reply.id);
    if (!pending) {
      if (reply.id <= 0 || reply.id >= this.nextId) this.violation('a reply names a request never made');
      return; // A late reply to a request already answered.
    }
    this.dispatch(reply, pending);
  }

  private dispatch(reply: Exclude<ParsedReply, { ev: 'ready' }>, pending: Pending): void {
    if (reply.ev === 'out') {
      pending.onOutput?.(reply.stream, reply.data);
      return;
    }
    this.pending.delete(reply.id);
    if (reply.ev === 'exit') pending.resolve({ exitCode: reply.code, signal: reply.signal, timedOut: reply.timedOut });
    else if (reply.ev === 'written' || reply.ev === 'signaled') pending.resolve(undefined);
    else pending.reject(new Error(reply.message));
  }

  private violation(reason: string): void {
    this.close(RunFailure.sandboxLost(`its init broke the protocol (${reason})`));
    this.onViolation(reason);
  }

  /** Fail what is pending; later requests fail at once. */
  close(error: Error): void {
    this.closedWith ??= error;
    this.failReady(this.closedWith);
    for (const pending of this.pending.values()) pending.reject(this.closedWith);
    this.pending.clear();
    this.buffered = [];
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
