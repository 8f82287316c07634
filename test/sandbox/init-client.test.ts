import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InitClient, MAX_REPLY_LINE } from '../../src/sandbox/init/init-client.js';

/** A client whose init is the test: requests are read from `requests`, replies written to `replies`. */
function client() {
  const requests = new PassThrough();
  const replies = new PassThrough();
  const violations: string[] = [];
  const init = new InitClient(requests, replies, (reason) => violations.push(reason));
  const sent: Record<string, unknown>[] = [];
  requests.on('data', (chunk: Buffer) =>
    sent.push(
      ...chunk
        .toString()
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    ),
  );
  const exec = () => {
    const output: string[] = [];
    const result = init.exec(['/bin/true'], '/workspace', { env: {}, onOutput: (_s, c) => output.push(c.toString()) });
    return { result, output };
  };
  return { init, replies, violations, sent, exec };
}

describe('the init client treats every reply as hostile', () => {
  it('routes well-formed replies to their request', async () => {
    const { replies, exec, violations } = client();
    const { result, output } = exec();
    replies.write(`${JSON.stringify({ ev: 'ready', pid: 2 })}\n`);
    replies.write(`${JSON.stringify({ ev: 'out', id: 1, stream: 'stdout', data: Buffer.from('hi').toString('base64') })}\n`);
    replies.write(`${JSON.stringify({ ev: 'exit', id: 1, code: 0, signal: null, timedOut: false })}\n`);
    await expect(result).resolves.toEqual({ exitCode: 0, signal: null, timedOut: false });
    expect(output).toEqual(['hi']);
    expect(violations).toEqual([]);
  });

  it.each([
    ['not JSON', 'hello'],
    ['an unknown event', JSON.stringify({ ev: 'owned', id: 1 })],
    ['a wrong field type', JSON.stringify({ ev: 'exit', id: 1, code: '0', signal: null, timedOut: false })],
    ['an extra field', JSON.stringify({ ev: 'written', id: 1, extra: true })],
    ['an exit code out of range', JSON.stringify({ ev: 'exit', id: 1, code: 70000, signal: null, timedOut: false })],
    ['data that is not base64', JSON.stringify({ ev: 'out', id: 1, stream: 'stdout', data: '%%%' })],
    ['a request never made', JSON.stringify({ ev: 'exit', id: 99, code: 0, signal: null, timedOut: false })],
    ['a prototype key', '{"__proto__": {"ev": "exit"}, "ev": "written", "id": 1}'],
  ])('%s ends the conversation as a lost sandbox, never the worker', async (_what, line) => {
    const { init, replies, exec, violations } = client();
    const { result } = exec();
    replies.write(`${line}\n`);
    // A typed failure the worker maps to ERROR sandbox_lost, never a message to match.
    await expect(result).rejects.toMatchObject({ name: 'RunFailure', state: 'ERROR', reason: 'sandbox_lost', message: expect.stringContaining('its init broke the protocol') });
    expect(violations).toHaveLength(1);
    await expect(init.write('/workspace/x', 'y', 0o600)).rejects.toMatchObject({ reason: 'sandbox_lost' });
  });

  it('a line that never ends is cut off at the limit, without buffering it whole', async () => {
    const { replies, exec, violations } = client();
    const { result } = exec();
    const piece = Buffer.alloc(64 * 1024, 'a');
    for (let sent = 0; sent <= MAX_REPLY_LINE; sent += piece.length) replies.write(piece);
    await expect(result).rejects.toThrow(/too long/);
    expect(violations).toEqual(['a reply line is too long']);
  });

  it('a late reply to an answered request is ignored', async () => {
    const { replies, exec, violations } = client();
    const { result } = exec();
    const exit = `${JSON.stringify({ ev: 'exit', id: 1, code: 0, signal: null, timedOut: false })}\n`;
    replies.write(exit);
    await result;
    replies.write(exit);
    const second = exec();
    replies.write(`${JSON.stringify({ ev: 'exit', id: 2, code: 3, signal: null, timedOut: false })}\n`);
    await expect(second.result).resolves.toMatchObject({ exitCode: 3 });
    expect(violations).toEqual([]);
  });
});
