import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startModelProxy, type ModelProxyLimits } from '../../src/worker/model-proxy.js';
import type { SocketServer } from '../../src/worker/socket-server.js';
import { startModelServer, type ModelServer } from '../support/model-server.js';

/**
 * The per-run model proxy, bounded (issue 16): only the providers' model API
 * paths are forwarded, request bodies are capped, and every phase of a call
 * has a time limit. The real proxy on a unix socket; the scripted model
 * server (or a server that stalls) as the provider.
 */

const TOKEN = 'run-token-0123456789abcdef';
const ANTHROPIC_KEY = 'sk-ant-real-key';
const OPENAI_KEY = 'sk-openai-real-key';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function call(socketPath: string, method: string, path: string, body: string | null, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, method, headers: { ...(body !== null ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

/** Raw bytes to the socket; resolves with everything it answered until it closed (or `waitMs` passed). */
function raw(socketPath: string, text: string, waitMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket = connect(socketPath, () => socket.write(text));
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (c: Buffer) => (got += c.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

/** A chunked body that never ends: keep sending 1 MiB chunks until the proxy answers or hangs up. */
function endlessChunkedBody(socketPath: string, path: string): Promise<{ answer: string; sentBytes: number }> {
  return new Promise((resolve) => {
    let got = '';
    let sent = 0;
    let done = false;
    const socket: Socket = connect(socketPath, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nx-api-key: ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      const pump = (): void => {
        while (!done && got === '' && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          socket.write(`${chunk.length.toString(16)}\r\n`);
          socket.write(chunk);
          if (!socket.write('\r\n')) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    const finish = (): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ answer: got, sentBytes: sent });
    };
    socket.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\r\n\r\n')) setTimeout(finish, 100);
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}

describe('the model proxy forwards only model API calls, within limits', () => {
  let dir = '';
  let anthropic: ModelServer;
  let openai: ModelServer;
  const closers: (() => Promise<unknown> | void)[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-model-proxy-'));
    anthropic = await startModelServer({ protocol: 'anthropic', script: [{ text: 'hello' }], repeatLast: true });
    openai = await startModelServer({ protocol: 'openai-responses', script: [{ text: 'hi' }], repeatLast: true });
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  afterAll(async () => {
    await anthropic?.close();
    await openai?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  async function proxy(limits: Partial<ModelProxyLimits> = {}, bases: { anthropic?: string; openai?: string } = {}): Promise<string> {
    const path = join(dir, `model-${n++}.sock`);
    const server: SocketServer = await startModelProxy(
      path,
      TOKEN,
      {
        anthropic: { base: bases.anthropic ?? anthropic.url, key: ANTHROPIC_KEY, header: 'x-api-key' },
        openai: { base: bases.openai ?? openai.url, key: OPENAI_KEY, header: 'authorization' },
      },
      (text) => text,
      limits,
    );
    closers.push(() => server.close());
    return path;
  }

  /** A provider that accepts connections and then does as told: never answer, or answer and go silent. */
  async function stallingProvider(mode: 'silent' | 'headers-then-silent'): Promise<string> {
    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (mode === 'headers-then-silent') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('event: ping\ndata: {"type":"ping"}\n\n');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  it('forwards the CLIs’ calls (streaming and not) with the real key in place of the run token', async () => {
    const sock = await proxy();
    const before = anthropic.requests.length;
    const streamed = await call(
      sock,
      'POST',
      '/anthropic/v1/messages?beta=true',
      JSON.stringify({ model: 'claude-x', stream: true, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      {
        'x-api-key': TOKEN,
        'anthropic-version': '2023-06-01',
        host: 'evil.test',
        'x-forwarded-host': 'evil.test',
      },
    );
    expect(streamed.status).toBe(200);
    expect(streamed.headers['content-type']).toBe('text/event-stream');
    expect(streamed.text).toContain('"text_delta"');
    expect(streamed.text).toContain('message_stop');
    const plain = await call(sock, 'POST', '/anthropic/v1/messages', JSON.stringify({ model: 'claude-x', max_tokens: 10, messages: [] }), { 'x-api-key': TOKEN });
    expect(plain.status).toBe(200);
    expect((JSON.parse(plain.text) as { content: { text: string }[] }).content[0]?.text).toBe('hello');
    const seen = anthropic.requests.slice(before);
    expect(seen.map((r) => r.path)).toEqual(['/v1/messages', '/v1/messages']);
    for (const r of seen) {
      expect(r.headers['x-api-key']).toBe(ANTHROPIC_KEY);
      // The provider is asked as itself: no host the sandbox chose.
      expect(r.headers.host).toBe(new URL(anthropic.url).host);
      expect(r.headers['x-forwarded-host']).toBeUndefined();
    }
    const codex = await call(sock, 'POST', '/openai/v1/responses', JSON.stringify({ model: 'gpt-x', stream: true, input: [] }), { authorization: `Bearer ${TOKEN}` });
    expect(codex.status).toBe(200);
    expect(codex.text).toContain('response.completed');
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(anthropic.failures).toEqual([]);
    expect(openai.failures).toEqual([]);
  });

  it('refuses every other path, method and request target, and none reaches the provider', async () => {
    const sock = await proxy();
    const before = { a: anthropic.requests.length, o: openai.requests.length };
    const auth = { 'x-api-key': TOKEN, authorization: `Bearer ${TOKEN}` };
    const refused: [string, string, number][] = [
      ['POST', '/anthropic/v1/../../admin', 404],
      ['POST', '/anthropic/v1/messages/../../../v1/organizations', 404],
      ['POST', '/anthropic/v1/%2e%2e/%2e%2e/x', 404],
      ['POST', '/anthropic/v1/messages/..', 404],
      ['POST', '/anthropic//evil.test/v1/messages', 404],
      ['POST', '/anthropic/v1/files', 404],
      ['POST', '/anthropic/v1/messages/batches', 404],
      ['POST', '/anthropic/v1/models/..', 404],
      ['GET', '/anthropic/v1/models/%2e%2e', 404],
      ['GET', '/anthropic/v1/messages', 405],
      ['DELETE', '/openai/v1/responses', 405],
      ['POST', '/openai/v1/messages', 404],
      ['POST', '/openai/v1/files', 404],
      ['POST', '/openai/v1/fine_tuning/jobs', 404],
      ['POST', "/openai/v1/responses?x=%0d%0a%22'", 400],
      ['POST', '/v1/messages', 404],
    ];
    for (const [method, path, status] of refused) {
      const answer = await call(sock, method, path, '{}', auth);
      expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(status);
      expect((JSON.parse(answer.text) as { error: { type: string } }).error.type).toBe('oz_model_proxy');
    }
    // Absolute-form targets (a proxy request for another host) are refused outright.
    for (const target of [`http://evil.test/v1/messages`, `${anthropic.url}/anthropic/v1/messages`]) {
      const answer = await raw(sock, `POST ${target} HTTP/1.1\r\nHost: evil.test\r\nx-api-key: ${TOKEN}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      expect(answer, target).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect(anthropic.requests.length).toBe(before.a);
    expect(openai.requests.length).toBe(before.o);
    expect(anthropic.failures).toEqual([]);
    expect(openai.failures).toEqual([]);
  });

  it('refuses a request body over the limit, declared or streamed, without forwarding it', async () => {
    const sock = await proxy({ maxRequestBytes: 4 * 1024 * 1024 });
    const before = anthropic.requests.length;
    // Declared too large: answered at once, the body never read.
    const declared = await raw(sock, `POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${TOKEN}\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
    expect(declared).toContain(`larger than ${4 * 1024 * 1024} bytes`);
    // Streamed without a length: cut once past the limit.
    const streamed = await endlessChunkedBody(sock, '/anthropic/v1/messages');
    expect(streamed.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(streamed.sentBytes).toBeLessThan(64 * 1024 * 1024);
    // Just under the limit still goes through.
    const fits = JSON.stringify({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x'.repeat(4 * 1024 * 1024 - 200) }] });
    expect((await call(sock, 'POST', '/anthropic/v1/messages', fits, { 'x-api-key': TOKEN })).status).toBe(200);
    expect(anthropic.requests.length).toBe(before + 1);
    // The default is 32 MiB.
    const defaults = await proxy();
    expect(await raw(defaults, `POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${TOKEN}\r\nContent-Length: ${32 * 1024 * 1024 + 1}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 413 /,
    );
  });

  it('bounds time: a body that never arrives, a provider that never answers, and one that goes silent mid-stream', async () => {
    // The client announces a body and sends half of it.
    const slow = await proxy({ requestBodyMs: 300 });
    const t0 = Date.now();
    const partial = await raw(slow, `POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${TOKEN}\r\nContent-Length: 100\r\n\r\n{"mess`);
    expect(partial).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - t0).toBeLessThan(4000);

    const silent = await proxy({ firstByteMs: 300 }, { anthropic: await stallingProvider('silent') });
    const t1 = Date.now();
    const noAnswer = await call(silent, 'POST', '/anthropic/v1/messages', '{}', { 'x-api-key': TOKEN });
    expect(noAnswer.status).toBe(504);
    expect(noAnswer.text).toContain('did not answer within 300 ms');
    expect(Date.now() - t1).toBeLessThan(4000);

    const stalled = await proxy({ idleMs: 300 }, { openai: await stallingProvider('headers-then-silent') });
    const t2 = Date.now();
    const cut = await call(stalled, 'POST', '/openai/v1/responses', '{}', { authorization: `Bearer ${TOKEN}` }).then(
      (answer) => `ended: ${answer.text}`,
      (error: Error) => `cut: ${error.message}`,
    );
    expect(cut).toMatch(/^cut: /);
    expect(Date.now() - t2).toBeLessThan(4000);

    const capped = await proxy({ totalMs: 300 }, { openai: await stallingProvider('silent') });
    expect((await call(capped, 'POST', '/openai/v1/responses', '{}', { authorization: `Bearer ${TOKEN}` })).status).toBe(504);
  });
});
