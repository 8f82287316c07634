import type { Readable, Writable } from 'node:stream';

/** The engine's frame header: stream (1 stdout, 2 stderr), three zero bytes, the payload's length (big-endian). */
const HEADER = 8;

/**
 * The engine's multiplexed exec stream (no TTY) split into stdout and
 * stderr. Written by hand, iteratively: dockerode's `demuxStream` recurses
 * once per frame and copies its buffer per frame, so a chunk of many tiny
 * frames (which the sandbox can make) overflows the worker's stack.
 */
export function demultiplex(stream: Readable, stdout: Writable, stderr: Writable): void {
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= HEADER) {
      const length = pending.readUInt32BE(offset + 4);
      if (pending.length - offset - HEADER < length) break;
      const payload = pending.subarray(offset + HEADER, offset + HEADER + length);
      (pending[offset] === 2 ? stderr : stdout).write(payload);
      offset += HEADER + length;
    }
    pending = offset === 0 ? pending : Buffer.from(pending.subarray(offset));
  });
}
