/**
 * What the CLI prints comes largely from runs: their output, notices,
 * summaries, titles, status messages, artifacts. A run could print terminal
 * control sequences and have them reach the user's terminal through `oz`
 * (OSC 52 writes the clipboard, CSI 2J clears the screen, a carriage return
 * overwrites a line with a forged one, OSC 8 plants a hyperlink), or reorder
 * what is shown with bidi overrides. So every character that is not plain
 * text is shown as a `\uXXXX` escape instead:
 *
 * - C0 controls except newline and tab (ESC, BEL, backspace, a carriage
 *   return not followed by a newline, …), DEL, and C1 controls
 *   (U+0080–U+009F, among them the 8-bit CSI U+009B);
 * - the bidi embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069.
 *
 * A `\r\n` line ending becomes `\n`: it overwrites nothing, and is common.
 *
 * The escape is also JSON's: inside a JSON string it decodes to the very
 * character it replaces, so `--output-format json` stays valid and lossless
 * (JSON.stringify escapes C0 controls itself, but leaves DEL, C1 and bidi
 * characters raw).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /\r\n|[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function escape(char: string): string {
  if (char === '\r\n') return '\n';
  return `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
}

/** `text` with every terminal control and bidi override shown as a `\uXXXX` escape. */
export function safeText(text: string): string {
  return text.replace(UNSAFE, escape);
}

/** A writer that prints only safe text. */
export function safeWriter(write: (text: string) => void): (text: string) => void {
  return (text) => write(safeText(text));
}
