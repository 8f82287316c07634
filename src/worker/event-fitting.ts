import type { WorkerEvent } from '../core/worker-protocol.js';

/** Bytes an event takes in a batch body (JSON, UTF-8). */
export function eventBytes(event: WorkerEvent): number {
  return Buffer.byteLength(JSON.stringify(event), 'utf8');
}

const MARKER = ' … [truncated: the event was too large]';

/**
 * Make an event fit in `maxBytes` of a batch: `output` events are split into
 * several (their text cut between characters, never losing any); any other
 * event keeps its shape and has its longest strings shortened, with a marker,
 * until it fits. Text is already redacted here, so a cut cannot reveal a
 * secret's half.
 */
export function fitEvent(event: WorkerEvent, maxBytes: number): WorkerEvent[] {
  if (eventBytes(event) <= maxBytes) return [event];
  const text = event.data.text;
  if (event.type === 'output' && typeof text === 'string') {
    // JSON escapes a character as at most 6 bytes (\u001b), so pieces of a
    // sixth of the room in characters always fit.
    const empty = eventBytes({ ...event, data: { ...event.data, text: '' } });
    const chars = Math.max(256, Math.floor((maxBytes - empty) / 6));
    const pieces: WorkerEvent[] = [];
    let start = 0;
    while (start < text.length) {
      let end = Math.min(text.length, start + chars);
      // Never split a surrogate pair.
      if (end < text.length && /[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
      pieces.push({ ...event, data: { ...event.data, text: text.slice(start, end) } });
      start = end;
    }
    return pieces;
  }
  return [shrink(event, maxBytes)];
}

/** Shorten the event's longest string values until the event fits. */
function shrink(event: WorkerEvent, maxBytes: number): WorkerEvent {
  let data = event.data;
  for (let round = 0; round < 64; round++) {
    const candidate = { ...event, data };
    const size = eventBytes(candidate);
    if (size <= maxBytes) return candidate;
    const longest = longestString(data);
    if (!longest || longest.value.length <= MARKER.length) break;
    const keep = Math.max(0, Math.floor(longest.value.length - (size - maxBytes) - MARKER.length - 16));
    data = replaceAt(data, longest.path, longest.value.slice(0, Math.min(keep, Math.floor(longest.value.length / 2))) + MARKER) as Record<string, unknown>;
  }
  // Nothing left to shorten (a huge number of small fields): keep what says what it was.
  return { type: event.type, at: event.at, data: { truncated: true, message: `A ${event.type} event larger than ${maxBytes} bytes was dropped.` } };
}

type Path = (string | number)[];

function longestString(value: unknown, path: Path = []): { path: Path; value: string } | null {
  if (typeof value === 'string') return { path, value };
  let best: { path: Path; value: string } | null = null;
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((item, i) => [i, item]) : value && typeof value === 'object' ? Object.entries(value) : [];
  for (const [key, item] of entries) {
    const found = longestString(item, [...path, key]);
    if (found && (!best || found.value.length > best.value.length)) best = found;
  }
  return best;
}

function replaceAt(value: unknown, path: Path, replacement: string): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return (value as unknown[]).map((item, i) => (i === head ? replaceAt(item, rest, replacement) : item));
  const record = value as Record<string, unknown>;
  const key = head as string;
  const inner: unknown = record[key];
  return { ...record, [key]: replaceAt(inner, rest, replacement) };
}
