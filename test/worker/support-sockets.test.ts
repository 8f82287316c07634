import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startModelProxy } from '../../src/worker/model-proxy.js';
import { Redactor } from '../../src/secrets/redactor.js';
import { startSupportServer } from '../../src/worker/support-server.js';

const TOKEN = 'run-token-0123456789';
const SECRET = 'sk-secret-value-abcdef';

function post(socketPath: string, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A request that announces a body, sends part of it and hangs up. */
function hangUpMidBody(socketPath: string, path: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(socketPath, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nx-api-key: ${TOKEN}\r\nContent-Length: 1000\r\n\r\n{"me`);
      setTimeout(() => socket.destroy(), 50);
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

describe('the per-run sockets a sandbox talks to', () => {
  let dir = '';
  const closers: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('harness-support survives a client that hangs up mid-request, and caps what one run may report', async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-sockets-'));
    const notes: string[] = [];
    const server = await startSupportServer(join(dir, 'sock'), TOKEN, {
      pullRequest: () => {},
      notify: (m) => notes.push(m),
      finish: () => {},
      reference: () => {},
      shutdown: () => {},
    });
    closers.push(() => server.close());
    await hangUpMidBody(join(dir, 'sock'), '/v1/notify');
    const ok = await post(join(dir, 'sock'), '/v1/notify', JSON.stringify({ message: 'still here' }), { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(notes).toEqual(['still here']);
    for (let i = 0; i < 99; i++)
      await post(join(dir, 'sock'), '/v1/artifacts', JSON.stringify({ type: 'pull-request', url: `https://x.test/${i}`, branch: 'b' }), { authorization: `Bearer ${TOKEN}` });
    expect(
      (await post(join(dir, 'sock'), '/v1/artifacts', JSON.stringify({ type: 'pull-request', url: 'https://x.test/99', branch: 'b' }), { authorization: `Bearer ${TOKEN}` }))
        .status,
    ).toBe(200);
    expect(
      (await post(join(dir, 'sock'), '/v1/artifacts', JSON.stringify({ type: 'pull-request', url: 'https://x.test/100', branch: 'b' }), { authorization: `Bearer ${TOKEN}` }))
        .status,
    ).toBe(429);
  });

  it('the model proxy takes only the run token, swaps in the real key, redacts the body, and survives a hang-up', async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-sockets-'));
    const seen: { key: unknown; auth: unknown; body: string }[] = [];
    const upstream: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ key: req.headers['x-api-key'], auth: req.headers.authorization, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise((r) => upstream.close(() => r(null))));
    const base = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    const redactor = new Redactor([SECRET]);
    const proxy = await startModelProxy(
      join(dir, 'model.sock'),
      TOKEN,
      { anthropic: { base, key: 'real-anthropic-key', header: 'x-api-key' }, openai: { base, key: undefined, header: 'authorization' } },
      (t) => redactor.redact(t),
    );
    closers.push(() => proxy.close());
    const sock = join(dir, 'model.sock');
    expect((await post(sock, '/anthropic/v1/messages', '{}', { 'x-api-key': 'wrong' })).status).toBe(401);
    await hangUpMidBody(sock, '/anthropic/v1/messages');
    const body = JSON.stringify({ messages: [{ role: 'user', content: `the tool printed ${SECRET}` }] });
    const answer = await post(sock, '/anthropic/v1/messages', body, { 'x-api-key': TOKEN });
    expect(answer).toEqual({ status: 200, text: '{"ok":true}' });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.key).toBe('real-anthropic-key');
    expect(seen[0]?.auth).toBeUndefined();
    expect(seen[0]?.body).not.toContain(SECRET);
    expect(seen[0]?.body).toContain('the tool printed');
    // No key for a provider: a clear 503, nothing forwarded.
    const none = await post(sock, '/openai/v1/responses', '{}', { authorization: `Bearer ${TOKEN}` });
    expect(none.status).toBe(503);
    expect(none.text).toContain('no OpenAI key');
    expect(seen).toHaveLength(1);
  });
});
