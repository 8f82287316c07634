import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, RetryError, generateText, stepCountIs, streamText, tool, type LanguageModel, type LanguageModelUsage } from 'ai';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startModelServer, takeModelServerFailures, type ModelProtocol, type ModelServer, type ModelServerOptions, type ScriptedTurn } from './model-server.js';

// The fake model ids make the SDK warn (e.g. "claude-x is unknown, max_tokens limited"): noise here.
globalThis.AI_SDK_LOG_WARNINGS = false;

const servers: ModelServer[] = [];
async function start(options: ModelServerOptions): Promise<ModelServer> {
  const server = await startModelServer({ ...options, selfChecked: true });
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Case {
  name: string;
  protocol: ModelProtocol;
  toolIdPrefix: string;
  model: (s: ModelServer) => LanguageModel;
}

const cases: Case[] = [
  { name: 'anthropic', protocol: 'anthropic', toolIdPrefix: 'toolu_', model: (s) => createAnthropic({ baseURL: s.anthropicBaseUrl, apiKey: 'k' })('claude-x') },
  { name: 'openai responses', protocol: 'openai-responses', toolIdPrefix: 'call_', model: (s) => createOpenAI({ baseURL: s.openaiBaseUrl, apiKey: 'k' }).responses('gpt-x') },
  { name: 'openai chat', protocol: 'openai-chat', toolIdPrefix: 'call_', model: (s) => createOpenAI({ baseURL: s.openaiBaseUrl, apiKey: 'k' }).chat('gpt-x') },
  {
    name: 'openai-compatible',
    protocol: 'openai-chat',
    toolIdPrefix: 'call_',
    model: (s) => createOpenAICompatible({ name: 'local', baseURL: s.openaiBaseUrl, apiKey: 'k' })('m'),
  },
];

/** Runs the AI SDK tool loop with one `read` tool; returns what the loop saw. */
async function runLoop(model: LanguageModel, streaming: boolean) {
  const reads: string[] = [];
  const errors: unknown[] = [];
  const tools = {
    read: tool({
      description: 'Read a file',
      inputSchema: z.object({ path: z.string() }),
      execute: async ({ path }) => {
        reads.push(path);
        return `contents of ${path}: hello`;
      },
    }),
  };
  const args = { model, tools, stopWhen: stepCountIs(5), prompt: 'What is in the files?', maxRetries: 0 };
  let text: string;
  let usage: LanguageModelUsage;
  let steps: { finishReason: string }[];
  if (streaming) {
    const result = streamText({ ...args, onError: ({ error }) => void errors.push(error) });
    text = await result.text;
    usage = await result.totalUsage;
    steps = await result.steps;
  } else {
    const result = await generateText(args);
    ({ text, totalUsage: usage, steps } = result);
  }
  // The loop continues on client tool calls whatever the finish reason says, so check it separately.
  return { reads, errors, text, usage, finishReasons: steps.map((s) => s.finishReason) };
}

describe.each(cases)('model server with $name', ({ protocol, toolIdPrefix, model }) => {
  describe.each([
    { mode: 'generateText', streaming: false },
    { mode: 'streamText', streaming: true },
  ])('$mode', ({ streaming }) => {
    it('runs a tool call, then answers with the final text', async () => {
      const server = await start({
        protocol,
        script: [
          { text: 'Let me look.', toolCalls: [{ name: 'read', input: { path: 'a.txt' } }], usage: { input: 10, output: 5 } },
          { text: 'The file says hello.', usage: { input: 20, output: 7 } },
        ],
      });

      const { reads, errors, text, usage, finishReasons } = await runLoop(model(server), streaming);

      expect(errors).toEqual([]);
      expect(finishReasons).toEqual(['tool-calls', 'stop']);
      expect(reads).toEqual(['a.txt']);
      expect(text).toBe('The file says hello.');
      expect(usage.inputTokens).toBe(30);
      expect(usage.outputTokens).toBe(12);
      expect(server.requests.map((r) => [r.protocol, r.stream])).toEqual([
        [protocol, streaming],
        [protocol, streaming],
      ]);
      const second = JSON.stringify(server.requests[1]?.body);
      expect(second).toContain('contents of a.txt: hello');
      expect(second).toContain(`${toolIdPrefix}1`);
      expect(server.remaining()).toBe(0);
      expect(server.failures).toEqual([]);
    });

    it('runs several tool calls of one turn', async () => {
      const server = await start({
        protocol,
        script: [
          {
            toolCalls: [
              { name: 'read', input: { path: 'a.txt' } },
              { name: 'read', input: { path: 'b.txt' }, id: 'given-id' },
            ],
            usage: { input: 3, output: 4 },
          },
          { text: 'Both say hello.', usage: { input: 5, output: 6 } },
        ],
      });

      const { reads, errors, text, usage, finishReasons } = await runLoop(model(server), streaming);

      expect(errors).toEqual([]);
      expect(finishReasons).toEqual(['tool-calls', 'stop']);
      expect(reads.sort()).toEqual(['a.txt', 'b.txt']);
      expect(text).toBe('Both say hello.');
      expect([usage.inputTokens, usage.outputTokens]).toEqual([8, 10]);
      const second = JSON.stringify(server.requests[1]?.body);
      for (const expected of ['contents of a.txt: hello', 'contents of b.txt: hello', `${toolIdPrefix}1`, 'given-id']) {
        expect(second).toContain(expected);
      }
      expect(server.failures).toEqual([]);
    });
  });

  it('answers scripted 500s with the protocol error body; the SDK retries, then gives up', async () => {
    const boom: ScriptedTurn = { status: 500 };
    const server = await start({ protocol, script: [boom, boom, boom] });

    const error = await generateText({ model: model(server), prompt: 'hi', maxRetries: 2 }).catch((e: unknown) => e);

    expect(RetryError.isInstance(error)).toBe(true);
    const last = (error as RetryError).lastError;
    expect(APICallError.isInstance(last)).toBe(true);
    expect((last as APICallError).statusCode).toBe(500);
    expect((last as APICallError).message).toBe('scripted HTTP 500');
    expect(server.requests).toHaveLength(3);
    expect(server.failures).toEqual([]);
  });

  it('fails loudly on a request after the script is used up', async () => {
    const server = await start({ protocol, script: [{ text: 'once' }] });
    const m = model(server);

    expect((await generateText({ model: m, prompt: 'hi', maxRetries: 0 })).text).toBe('once');
    const error = await generateText({ model: m, prompt: 'again', maxRetries: 0 }).catch((e: unknown) => e);

    expect(APICallError.isInstance(error)).toBe(true);
    expect((error as APICallError).statusCode).toBe(500);
    expect((error as APICallError).message).toMatch(/^unscripted request: #2 POST \/v1\//);
    expect(server.failures).toHaveLength(1);
    expect(server.failures[0]).toMatch(/^unscripted request: #2 POST \/v1\/\S+: the script's 1 turn\(s\) were used up$/);
  });
});

describe('model server', () => {
  it('fails loudly on a request for another protocol', async () => {
    const server = await start({ protocol: 'anthropic', script: [{ text: 'never' }] });

    const error = await generateText({ model: createOpenAI({ baseURL: server.openaiBaseUrl, apiKey: 'k' }).chat('gpt-x'), prompt: 'hi', maxRetries: 0 }).catch((e: unknown) => e);

    expect(APICallError.isInstance(error)).toBe(true);
    expect((error as APICallError).message).toContain('unscripted request');
    expect(server.failures).toEqual(['unscripted request: #1 POST /v1/chat/completions speaks openai-chat, but this server was scripted for anthropic']);
    expect(server.remaining()).toBe(1);
  });

  it('fails loudly on an unknown path, but answers health probes without using a turn', async () => {
    const server = await start({ protocol: 'openai-chat', script: [{ text: 'x' }] });

    expect((await fetch(`${server.url}/`)).status).toBe(200);
    expect((await fetch(`${server.url}/`, { method: 'HEAD' })).status).toBe(200);
    expect(server.failures).toEqual([]);
    const res = await fetch(`${server.openaiBaseUrl}/embeddings`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { message: 'unscripted request: POST /v1/embeddings is not a model endpoint' } });
    expect(server.failures).toHaveLength(1);
    expect(server.requests).toEqual([]);
    expect(server.remaining()).toBe(1);
  });

  it('repeats the last turn with repeatLast', async () => {
    const server = await start({ protocol: 'anthropic', script: [{ text: 'first' }, { text: 'again' }], repeatLast: true });
    const m = createAnthropic({ baseURL: server.anthropicBaseUrl, apiKey: 'k' })('claude-x');

    const texts: string[] = [];
    for (let i = 0; i < 3; i++) texts.push((await generateText({ model: m, prompt: 'hi' })).text);

    expect(texts).toEqual(['first', 'again', 'again']);
    expect(server.remaining()).toBe(0);
    expect(server.failures).toEqual([]);
  });

  it('takes a script function that sees each request', async () => {
    const server = await start({
      protocol: 'openai-responses',
      script: (req, index) => (index < 2 ? { text: `answer ${index} to ${JSON.stringify(req.body).includes('ping') ? 'ping' : '?'}` } : undefined),
    });
    const m = createOpenAI({ baseURL: server.openaiBaseUrl, apiKey: 'k' }).responses('gpt-x');

    expect((await generateText({ model: m, prompt: 'ping' })).text).toBe('answer 0 to ping');
    expect(await streamText({ model: m, prompt: 'ping' }).text).toBe('answer 1 to ping');
    await expect(generateText({ model: m, prompt: 'ping', maxRetries: 0 })).rejects.toThrow(/unscripted request/);
    expect(server.failures).toEqual(['unscripted request: #3 POST /v1/responses: the script function returned no turn']);
  });

  it('reports the failures of a server the test did not check, once, for the after-each check to fail on', async () => {
    const server = await startModelServer({ protocol: 'anthropic', script: [] });
    servers.push(server);
    const response = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(500);
    expect(takeModelServerFailures()).toEqual(['unscripted request: #1 POST /v1/chat/completions speaks openai-chat, but this server was scripted for anthropic']);
    expect(takeModelServerFailures()).toEqual([]);
  });
});
