/**
 * A small server-sent-events reader over fetch for the API tests: it parses
 * `id:` / `event:` / `data:` frames as they arrive, lets a test wait (with a
 * bound) for a condition on the frames seen so far or for the server to end
 * the stream, and aborts cleanly so no test leaves a connection open.
 */
export interface SseFrame {
  /** The `id:` line, or null when the frame has none (our `end` frame). */
  id: string | null;
  /** The `event:` line; `message` when absent, as EventSource does. */
  event: string;
  /** The `data:` lines joined with newlines. */
  data: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** Every frame received so far, in order. */
  readonly frames: SseFrame[];
  /** Resolves once `predicate(frames)` holds; rejects after `timeoutMs` or if the stream ends first. */
  waitFor(what: string, predicate: (frames: readonly SseFrame[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ends the stream; rejects after `timeoutMs`. */
  closed(timeoutMs?: number): Promise<void>;
  /** True once the body ended (server closed it, or we aborted). */
  readonly ended: boolean;
  /** Close the connection from our side (idempotent). */
  abort(): void;
}

function parseBlock(block: string): SseFrame | null {
  let id: string | null = null;
  let event: string | null = null;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  // A block with only `retry:` (or comments) is not an event.
  if (event === null && data.length === 0) return null;
  return { id, event: event ?? 'message', data: data.join('\n') };
}

export async function openSse(url: string, headers: Record<string, string>): Promise<SseStream> {
  const controller = new AbortController();
  const connectTimer = setTimeout(() => controller.abort(), 10_000);
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  } finally {
    clearTimeout(connectTimer);
  }
  const frames: SseFrame[] = [];
  const listeners = new Set<() => void>();
  let ended = false;
  let failure: unknown = null;
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };

  void (async () => {
    const body = response.body;
    if (!body) return;
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const frame = parseBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (frame) {
            frames.push(frame);
            notify();
          }
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) failure = error;
    } finally {
      ended = true;
      notify();
    }
  })();

  const until = (what: string, done: () => boolean, failIfEnded: boolean, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (done()) finish(null);
        else if (ended && failIfEnded) finish(new Error(`the stream ended before ${what}; frames: ${JSON.stringify(frames)}; error: ${String(failure)}`));
      };
      const finish = (error: Error | null): void => {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${JSON.stringify(frames)}`)), timeoutMs);
      listeners.add(check);
      check();
    });

  return {
    status: response.status,
    headers: response.headers,
    frames,
    get ended() {
      return ended;
    },
    waitFor: (what, predicate, timeoutMs = 10_000) => until(what, () => predicate(frames), true, timeoutMs),
    closed: (timeoutMs = 10_000) => until('the server to close the stream', () => ended, false, timeoutMs),
    abort: () => controller.abort(),
  };
}
