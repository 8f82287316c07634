import { MAX_DIFF_BYTES } from '../../core/run-diff.js';
import type { DiffsRequest } from '../../core/worker-protocol.js';
import type { Sandbox } from '../../sandbox/sandbox-backend.js';

export interface DiffInput {
  sandbox: Sandbox;
  /** The platform's environment (the host system's git). */
  env: Record<string, string>;
  repos: readonly { url: string }[];
  dirs: readonly string[];
  /** Per repository, where the patch starts: the run's first execution's start, else this execution's. */
  starts: readonly string[];
  redact: (text: string) => string;
}

/**
 * The patch of the run's changes to each repository that has any (docs/results.md
 * "Diffs"): `git diff` inside the sandbox, on the agent's own `.git` as the sandbox
 * user (never host-side), from the start to the commit just published; cut to
 * {@link MAX_DIFF_BYTES} as it streams (its whole size still counted), then
 * redacted like everything else the worker sends.
 */
export async function collectDiffs(input: DiffInput): Promise<DiffsRequest['diffs']> {
  const diffs: DiffsRequest['diffs'] = [];
  for (const [i, repo] of input.repos.entries()) {
    const dir = input.dirs[i] as string;
    const base = input.starts[i];
    if (!base) continue;
    let head = '';
    const resolved = await input.sandbox.exec(['git', '-C', dir, 'rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], {
      env: input.env,
      onOutput: (stream, chunk) => (stream === 'stdout' ? (head += chunk.toString()) : undefined),
    });
    head = head.trim();
    if (resolved.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(head) || head === base) continue;
    const kept: Buffer[] = [];
    let bytes = 0;
    const result = await input.sandbox.exec(
      ['git', '-C', dir, '-c', 'core.quotepath=off', 'diff', '--no-color', '--no-ext-diff', '--no-textconv', '--find-renames', base, head, '--'],
      {
        env: input.env,
        timeoutMs: 5 * 60_000,
        onOutput: (stream, chunk) => {
          if (stream !== 'stdout') return;
          const room = MAX_DIFF_BYTES - bytes;
          if (room > 0) kept.push(chunk.subarray(0, room));
          bytes += chunk.length;
        },
      },
    );
    if (result.exitCode !== 0) continue;
    const truncated = bytes > MAX_DIFF_BYTES;
    // A cut may split a character (it becomes U+FFFD); redaction may lengthen a line: the bound holds either way.
    const patch = input.redact(Buffer.concat(kept).toString('utf8')).slice(0, MAX_DIFF_BYTES);
    diffs.push({ repository: repo.url, base, head, patch, bytes, truncated });
  }
  return diffs;
}
