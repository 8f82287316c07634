/**
 * A minimal server-sent-events reader over fetch's body stream. Written by
 * hand because the few lines of the SSE grammar we need (id, event, data,
 * comments, blank-line dispatch) are smaller than a dependency, and the common
 * EventSource packages cannot send an Authorization header or stop on demand.
 */
export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | null = null;
  let event = 'message';
  let data: string[] = [];
  // A reader rather than `for await`: not every browser can iterate a ReadableStream (the dashboard uses this too).
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value: chunk } = await reader.read();
      if (done) break;
      buffer += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (data.length > 0) yield { id, event, data: data.join('\n') };
          event = 'message';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  } finally {
    // An early return (the consumer stopped) cancels the body, so the connection closes.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
