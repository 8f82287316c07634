import type { Sandbox } from '../../sandbox/sandbox-backend.js';

/** Names a note shows before it says "and N more". */
const MAX_NAMES = 20;
/** A name longer than this is cut in the note (a file name can be 255 bytes). */
const MAX_NAME = 80;
/** What the listing may print: MAX_NAMES names of at most 255 bytes, and a count. */
const MAX_OUTPUT = 16 * 1024;

/**
 * The sandbox's half: the workspace's top-level entries that are not one of
 * the repository directories given as arguments, at most MAX_NAMES of them
 * (directories with a trailing `/`), each ended by a NUL, then how many more
 * there are. Hidden entries are left out: the workspace is also `HOME`, so
 * they are the tools' own configuration and caches (`.claude`, `.codex`,
 * `.npm`, `.cache`) and the platform's `.oz`, not work.
 */
const LIST_OUTSIDE = [
  'shown=0',
  'more=0',
  'for f in *; do',
  '  { [ -e "$f" ] || [ -L "$f" ]; } || continue',
  '  for d in "$@"; do [ "$f" = "$d" ] && continue 2; done',
  `  if [ "$shown" -ge ${MAX_NAMES} ]; then more=$((more + 1)); continue; fi`,
  '  shown=$((shown + 1))',
  `  if [ -d "$f" ] && [ ! -L "$f" ]; then printf '%s/\\0' "$f"; else printf '%s\\0' "$f"; fi`,
  'done',
  `printf '%s' "$more"`,
].join('\n');

/** A name from the workspace (the agent's) made fit for a status line: no control characters, bounded. */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return plain.length > MAX_NAME ? `${plain.slice(0, MAX_NAME)}…` : plain;
}

/**
 * What a run left in the workspace outside every repository, which
 * publishing cannot carry: "Changes outside the repositories were not
 * published: notes.txt, out/." (docs/results.md), or null when there is
 * nothing. Listed inside the sandbox, as the sandbox user, like the commit:
 * the worker never reads the agent's workspace itself. A listing that fails
 * reports nothing; a sandbox that fails under it throws.
 */
export async function outsideChangesNote(sandbox: Sandbox, env: Record<string, string>, dirs: readonly string[]): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  const result = await sandbox.exec(['/bin/sh', '-c', LIST_OUTSIDE, 'oz-outside', ...dirs], {
    env,
    timeoutMs: 60_000,
    onOutput: (stream, chunk) => {
      if (stream !== 'stdout' || size > MAX_OUTPUT) return;
      size += chunk.length;
      chunks.push(chunk);
    },
  });
  if (result.exitCode !== 0 || size > MAX_OUTPUT) return null;
  const fields = Buffer.concat(chunks).toString('utf8').split('\0');
  const more = Number(fields.pop());
  const names = fields.slice(0, MAX_NAMES).map(printable);
  if (names.length === 0 || !Number.isSafeInteger(more) || more < 0) return null;
  const list = more > 0 ? `${names.join(', ')} and ${more} more` : names.join(', ');
  return `Changes outside the ${dirs.length === 1 ? 'repository' : 'repositories'} were not published: ${list}.`;
}
