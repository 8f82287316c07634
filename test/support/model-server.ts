/**
 * A scripted model server for tests: answers the Anthropic Messages, OpenAI Chat Completions
 * and OpenAI Responses APIs from a fixed script of turns, in the exact JSON and SSE shapes the
 * Vercel AI SDK providers (`@ai-sdk/anthropic`, `@ai-sdk/openai`, `@ai-sdk/openai-compatible`)
 * parse. Anything the script did not foresee is answered with HTTP 500 and recorded in `failures`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ModelProtocol = 'anthropic' | 'openai-chat' | 'openai-responses';

export interface ScriptedToolCall {
  name: string;
  input: Record<string, unknown>;
  /** Defaults to `toolu_1`, `toolu_2`… (Anthropic) or `call_1`, `call_2`… (OpenAI), counted per server. */
  id?: string;
}

/** A normal assistant reply. Usage defaults to 0 input / 0 output tokens. */
export interface ScriptedReply {
  text?: string;
  toolCalls?: ScriptedToolCall[];
  usage?: { input: number; output: number };
}

/** An HTTP error answer; `body` defaults to the protocol's own error JSON. */
export interface ScriptedError {
  status: number;
  body?: unknown;
}

export type ScriptedTurn = ScriptedReply | ScriptedError;

export interface RecordedRequest {
  /** The protocol the request's path belongs to (not necessarily the server's). */
  protocol: ModelProtocol;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body. */
  body: unknown;
  /** Whether the request asked for SSE (`"stream": true`). */
  stream: boolean;
}

/** A script function returns `undefined` for a request it did not expect (answered as unscripted). */
export type Script = ScriptedTurn[] | ((req: RecordedRequest, index: number) => ScriptedTurn | undefined);

export interface ModelServerOptions {
  protocol: ModelProtocol;
  script: Script;
  /** Answer every request after the script's end with its last turn. */
  repeatLast?: boolean;
  /**
   * The test asserts `failures` itself (the model server's own tests).
   * Otherwise every test fails while an open server has failures: see
   * `takeModelServerFailures` (test/support/leak-check.ts runs it after each test).
   */
  selfChecked?: boolean;
}

export interface ModelServer {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  /** For `createAnthropic({ baseURL })` (…/v1). */
  anthropicBaseUrl: string;
  /** For `createOpenAI({ baseURL })` and `createOpenAICompatible({ baseURL })` (…/v1). */
  openaiBaseUrl: string;
  /** Every POST to a model endpoint, in order (including unscripted ones). */
  requests: RecordedRequest[];
  /** Unscripted requests, wrong protocols, unknown paths; a test asserts this is empty. */
  failures: string[];
  /** Turns not yet consumed (Infinity for a script function; 0 once exhausted, even with repeatLast). */
  remaining(): number;
  close(): Promise<void>;
}

const ENDPOINTS: Record<string, ModelProtocol | undefined> = {
  '/v1/messages': 'anthropic',
  '/v1/chat/completions': 'openai-chat',
  '/v1/responses': 'openai-responses',
};

type Json = Record<string, unknown>;
type NextId = (prefix: string) => string;

/** A scripted reply with ids assigned and tool arguments serialized. */
interface Reply {
  text: string;
  calls: { id: string; name: string; input: Record<string, unknown>; args: string }[];
  input: number;
  output: number;
}

/** The failure lists of the servers this test file has open (and of those it closed since the last check). */
const unchecked = new Set<string[]>();

/**
 * Every failure recorded since the last call, by any model server not
 * `selfChecked`: unscripted or unexpected calls a test did not look at.
 * Taken, so each is reported once.
 */
export function takeModelServerFailures(): string[] {
  const taken: string[] = [];
  for (const failures of unchecked) taken.push(...failures.splice(0));
  return taken;
}

export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const { protocol, script, repeatLast = false } = options;
  const requests: RecordedRequest[] = [];
  const failures: string[] = [];
  const counters = new Map<string, number>();
  const nextId: NextId = (prefix) => {
    const n = (counters.get(prefix) ?? 0) + 1;
    counters.set(prefix, n);
    return `${prefix}${n}`;
  };
  let consumed = 0;

  function nextTurn(req: RecordedRequest): ScriptedTurn | undefined {
    if (typeof script === 'function') return script(req, consumed++);
    return consumed < script.length ? script[consumed++] : repeatLast ? script.at(-1) : undefined;
  }

  function unscripted(res: ServerResponse, as: ModelProtocol, why: string): void {
    failures.push(`unscripted request: ${why}`);
    sendJson(res, 500, errorBody(as, 500, `unscripted request: ${why}`));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const what = `${req.method ?? '?'} ${path}`;
    // Health probes never consume a turn.
    if ((req.method === 'GET' || req.method === 'HEAD') && path === '/') return sendJson(res, 200, { ok: true });
    const raw = await readBody(req);
    const target = ENDPOINTS[path];
    if (req.method !== 'POST' || target === undefined) return unscripted(res, protocol, `${what} is not a model endpoint`);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return unscripted(res, target, `${what} with a body that is not JSON: ${raw.slice(0, 200)}`);
    }
    const json: Json = isJson(body) ? body : {};
    const recorded: RecordedRequest = { protocol: target, path, headers: { ...req.headers }, body, stream: json.stream === true };
    requests.push(recorded);
    const n = requests.length;
    if (target !== protocol) return unscripted(res, target, `#${n} ${what} speaks ${target}, but this server was scripted for ${protocol}`);
    const turn = nextTurn(recorded);
    if (turn === undefined) {
      const why = typeof script === 'function' ? 'the script function returned no turn' : `the script's ${script.length} turn(s) were used up`;
      return unscripted(res, target, `#${n} ${what}: ${why}`);
    }
    if ('status' in turn) return sendJson(res, turn.status, turn.body ?? errorBody(protocol, turn.status, `scripted HTTP ${turn.status}`));

    const reply: Reply = {
      text: turn.text ?? '',
      calls: (turn.toolCalls ?? []).map((c) => ({
        id: c.id ?? nextId(protocol === 'anthropic' ? 'toolu_' : 'call_'),
        name: c.name,
        input: c.input,
        args: JSON.stringify(c.input),
      })),
      input: turn.usage?.input ?? 0,
      output: turn.usage?.output ?? 0,
    };
    const model = typeof json.model === 'string' ? json.model : 'scripted-model';
    const { json: toJson, sse: toSse } = PROTOCOLS[protocol];
    if (recorded.stream) sendSse(res, toSse(reply, model, nextId));
    else sendJson(res, 200, toJson(reply, model, nextId));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      failures.push(`model server crashed on ${req.method ?? '?'} ${req.url ?? ''}: ${String(err)}`);
      if (!res.headersSent) sendJson(res, 500, errorBody(protocol, 500, String(err)));
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.selfChecked !== true) unchecked.add(failures);

  return {
    url,
    anthropicBaseUrl: `${url}/v1`,
    openaiBaseUrl: `${url}/v1`,
    requests,
    failures,
    remaining: () => (typeof script === 'function' ? Infinity : Math.max(0, script.length - consumed)),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // fetch (undici) keeps connections alive; drop them so close() resolves promptly.
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Protocols. Each has one function for the JSON answer and one for the SSE frames.

const PROTOCOLS: Record<ModelProtocol, { json: (r: Reply, model: string, id: NextId) => Json; sse: (r: Reply, model: string, id: NextId) => string[] }> = {
  anthropic: { json: anthropicJson, sse: anthropicSse },
  'openai-chat': { json: chatJson, sse: chatSse },
  'openai-responses': { json: responsesJson, sse: responsesSse },
};

/** Anthropic Messages, non-streaming. The SDK reads `usage.input_tokens` / `usage.output_tokens`. */
function anthropicJson(r: Reply, model: string, id: NextId): Json {
  return {
    id: id('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content: [...(r.text ? [{ type: 'text', text: r.text }] : []), ...r.calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.input }))],
    stop_reason: r.calls.length > 0 ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: r.input, output_tokens: r.output },
  };
}

/**
 * Anthropic Messages, streaming. Input tokens come in `message_start`, output tokens (cumulative)
 * and the stop reason in `message_delta`. A tool_use block starts with `input: {}` and its
 * arguments follow as `input_json_delta` string pieces.
 */
function anthropicSse(r: Reply, model: string, id: NextId): string[] {
  const message = { ...anthropicJson(r, model, id), content: [], stop_reason: null, usage: { input_tokens: r.input, output_tokens: 0 } };
  const events: Json[] = [{ type: 'message_start', message }, { type: 'ping' }];
  let index = 0;
  if (r.text) {
    events.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    for (const text of halves(r.text)) events.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
    events.push({ type: 'content_block_stop', index: index++ });
  }
  for (const c of r.calls) {
    events.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } });
    for (const partial_json of halves(c.args)) events.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } });
    events.push({ type: 'content_block_stop', index: index++ });
  }
  events.push(
    { type: 'message_delta', delta: { stop_reason: r.calls.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: r.output } },
    { type: 'message_stop' },
  );
  return events.map((e) => frame(e, true));
}

const chatFinish = (r: Reply): string => (r.calls.length > 0 ? 'tool_calls' : 'stop');
const chatUsage = (r: Reply): Json => ({ prompt_tokens: r.input, completion_tokens: r.output, total_tokens: r.input + r.output });

/** OpenAI Chat Completions, non-streaming. Tool arguments are a JSON *string*. */
function chatJson(r: Reply, model: string, id: NextId): Json {
  const toolCalls = r.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } }));
  return {
    id: id('chatcmpl-'),
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: r.text || null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
        logprobs: null,
        finish_reason: chatFinish(r),
      },
    ],
    usage: chatUsage(r),
  };
}

/**
 * OpenAI Chat Completions, streaming: `data:` lines only (no `event:`), ending in `data: [DONE]`.
 * A tool call's first delta carries index, id and name; later deltas only index + argument pieces.
 * Usage comes in a last chunk with `choices: []` — real OpenAI sends it only when asked
 * (`stream_options.include_usage`, which @ai-sdk/openai always sets but @ai-sdk/openai-compatible
 * sets only with `includeUsage: true`); like llama.cpp/Ollama we always send it.
 */
function chatSse(r: Reply, model: string, id: NextId): string[] {
  const base = { id: id('chatcmpl-'), object: 'chat.completion.chunk', created: nowSeconds(), model };
  const delta = (d: Json, finish_reason: string | null = null): Json => ({ ...base, choices: [{ index: 0, delta: d, logprobs: null, finish_reason }] });
  const chunks: Json[] = [delta({ role: 'assistant', content: r.text ? '' : null })];
  for (const content of r.text ? halves(r.text) : []) chunks.push(delta({ content }));
  r.calls.forEach((c, index) => {
    chunks.push(delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
    for (const args of halves(c.args)) chunks.push(delta({ tool_calls: [{ index, function: { arguments: args } }] }));
  });
  chunks.push(delta({}, chatFinish(r)), { ...base, choices: [], usage: chatUsage(r) });
  return [...chunks.map((c) => frame(c, false)), 'data: [DONE]\n\n'];
}

type ResponsesItem =
  | { type: 'message'; id: string; status: string; role: 'assistant'; content: { type: 'output_text'; text: string; annotations: [] }[] }
  | { type: 'function_call'; id: string; call_id: string; name: string; arguments: string; status: string };

/**
 * OpenAI Responses, non-streaming. Text is a `message` output item, each tool call a
 * `function_call` item (item `id` fc_…, the tool call id is `call_id`). There is no stop reason:
 * the SDK reports "tool-calls" when a function_call item is present and `incomplete_details` is null.
 */
function responsesJson(r: Reply, model: string, id: NextId): Json & { output: ResponsesItem[] } {
  const output: ResponsesItem[] = [];
  if (r.text) output.push({ type: 'message', id: id('msg_'), status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: r.text, annotations: [] }] });
  for (const c of r.calls) output.push({ type: 'function_call', id: id('fc_'), call_id: c.id, name: c.name, arguments: c.args, status: 'completed' });
  return {
    id: id('resp_'),
    object: 'response',
    created_at: nowSeconds(),
    status: 'completed',
    model,
    output,
    incomplete_details: null,
    usage: {
      input_tokens: r.input,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: r.output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: r.input + r.output,
    },
  };
}

/**
 * OpenAI Responses, streaming: named events (`event:` + `data:` with the same `type` and a
 * `sequence_number`), no [DONE]. Each output item is opened with `response.output_item.added`,
 * filled by text / argument deltas and closed with `response.output_item.done`; usage arrives
 * only in the final `response.completed`, which carries the whole response.
 */
function responsesSse(r: Reply, model: string, id: NextId): string[] {
  const response = responsesJson(r, model, id);
  const events: Json[] = [{ type: 'response.created', response: { ...response, status: 'in_progress', output: [], usage: null } }];
  response.output.forEach((item, output_index) => {
    if (item.type === 'message') {
      events.push({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', content: [] } });
      for (const delta of halves(r.text)) events.push({ type: 'response.output_text.delta', item_id: item.id, output_index, content_index: 0, delta, logprobs: [] });
    } else {
      events.push({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', arguments: '' } });
      for (const delta of halves(item.arguments)) events.push({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index, delta });
      events.push({ type: 'response.function_call_arguments.done', item_id: item.id, output_index, arguments: item.arguments });
    }
    events.push({ type: 'response.output_item.done', output_index, item });
  });
  events.push({ type: 'response.completed', response });
  return events.map((e, sequence_number) => frame({ ...e, sequence_number }, true));
}

const ANTHROPIC_ERROR_TYPES: Record<number, string | undefined> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

/** The protocol's own error JSON, so the SDK's APICallError carries `message`. */
function errorBody(protocol: ModelProtocol, status: number, message: string): Json {
  if (protocol === 'anthropic') {
    return { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? 'api_error', message } };
  }
  return { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers.

/**
 * Every answer carries `retry-after-ms: 0`: the AI SDK honours it instead of its 2 s / 4 s
 * exponential backoff, so retried 500s (scripted or unscripted) do not slow tests down.
 */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'retry-after-ms': '0' });
  res.end(JSON.stringify(body));
}

function sendSse(res: ServerResponse, frames: string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'retry-after-ms': '0' });
  for (const f of frames) res.write(f);
  res.end();
}

function frame(data: Json, named: boolean): string {
  return `${named ? `event: ${String(data.type)}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

/** Split into two pieces so clients must concatenate deltas (half a JSON object never parses). */
function halves(s: string): string[] {
  const mid = Math.ceil(s.length / 2);
  return s.length < 2 ? [s] : [s.slice(0, mid), s.slice(mid)];
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
