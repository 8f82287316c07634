/**
 * Read an engine's progress stream (a pull, an import: JSON lines) to its
 * end; reject with the first `error` it reports, which is the engine's (the
 * registry's) own message.
 */
export function drain(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: string | null = null;
    let rest = '';
    const read = (line: string): void => {
      try {
        const message = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
        failure ??= message.errorDetail?.message ?? message.error ?? null;
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
      else resolve();
    });
  });
}
