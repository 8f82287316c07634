import { readFileSync } from 'node:fs';
import { UsageError } from './usage-error.js';

/** One trailing newline is the file's or the pipe's, not the value's. */
function chomp(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Ask for a value on the terminal without echoing it. Written by hand: Node's
 * readline has no hidden input, and a dependency for twenty lines is not worth it.
 */
function promptHidden(prompt: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(prompt);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    const done = (error?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003') return done(new UsageError('cancelled'));
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else value += char;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * A secret's value: from `--value-file` (`-` = stdin), else piped stdin, else
 * a hidden prompt on a terminal. Never from a flag's value (it would stay in
 * the shell history and the process list).
 */
export async function readSecretValue(
  valueFile: string | undefined,
  io: { stdin: NodeJS.ReadStream; stderr: NodeJS.WriteStream } = { stdin: process.stdin, stderr: process.stderr },
): Promise<string> {
  if (valueFile === '-') return chomp(await readAll(io.stdin));
  if (valueFile !== undefined) {
    try {
      return chomp(readFileSync(valueFile, 'utf8'));
    } catch (error) {
      throw new UsageError(`--value-file: cannot read ${valueFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (!io.stdin.isTTY) return chomp(await readAll(io.stdin));
  return promptHidden('Secret value (not shown): ', io.stdin, io.stderr);
}
