/**
 * Read an engine's progress stream (a pull, an import: JSON lines) to its
 * end; reject with the first `error` it reports, which is the engine's (the
 * registry's) own message. Resolves to the last `status` (an import's: the
 * new image's id).
 */
export function drain(stream: NodeJS.ReadableStream): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let failure: string | null = null;
    let status: string | null = null;
    let rest = '';
    const read = (line: string): void => {
      try {
        const message = JSON.parse(line) as { error?: string; errorDetail?: { message?: string }; status?: string };
        failure ??= message.errorDetail?.message ?? message.error ?? null;
        if (typeof message.status === 'string') status = message.status.trim();
      } catch {
        // Not JSON: progress text.
      }
    };
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      lines.forEach(read);
    });
    stream.on('error', reject);
    stream.on('end', () => {
      read(rest);
      if (failure) reject(new Error(failure));
      else resolve(status);
    });
  });
}
