import type { CliContext } from './context.js';

/** Whether a person is at the terminal to answer a question. */
export function interactive(ctx: CliContext): boolean {
  return ctx.env.isTty && Boolean(process.stdin.isTTY);
}

/** Ask a yes/no question on the terminal (stderr, so stdout stays the command's output); only "y" or "yes" is yes. */
export async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}
