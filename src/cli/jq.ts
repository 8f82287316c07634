import { UsageError } from './usage-error.js';

/**
 * `--jq FILTER`, as Oz's CLI has it: the command's JSON output through a jq
 * filter, each result on its own line, strings printed unquoted (jq's `-r`).
 * jq itself does the filtering (jq-wasm: jq compiled to WebAssembly), so a
 * filter means exactly what it means to jq; it is loaded only when the flag
 * is given, since instantiating it costs the CLI's start-up time.
 */
export async function applyJq(value: unknown, filter: string): Promise<string> {
  const { raw } = await import('jq-wasm');
  const result = await raw(value as object, filter, ['-r']);
  if (result.exitCode === 3 || (result.exitCode !== 0 && /compile error/.test(result.stderr))) {
    throw new UsageError(`--jq: ${result.stderr.replace(/^jq: error: /, '').trim()}`);
  }
  if (result.exitCode !== 0) throw new JqRuntimeError(result.stderr.trim() || `jq exited with ${result.exitCode}`);
  return result.stdout.length > 0 ? `${result.stdout}\n` : '';
}

/** The filter compiled but failed on this input (jq's exit code 5). */
export class JqRuntimeError extends Error {
  override name = 'JqRuntimeError';
}
