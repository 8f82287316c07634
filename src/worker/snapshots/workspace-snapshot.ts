import type { Sandbox } from '../../sandbox/sandbox-backend.js';

/**
 * Workspace snapshots (docs/design.md "Follow-ups and executions"): what an
 * execution leaves for the next one, wherever it runs. Made and restored
 * inside the sandbox by the platform's own tools (the host never reads the
 * agent's `.git` or follows its symlinks), as a tar of
 * - per repository: the files that differ from the commit the execution
 *   started from (committed or not) and the untracked ones git does not
 *   ignore, and a list of the files deleted since;
 * - everything in the workspace outside the repositories (the agent CLIs'
 *   sessions under `.oz`), except the caches `.cache`, `.npm` and `node_modules`.
 * Ignored files (build output, dependencies) are not kept: setup and the
 * maintenance commands make them again. Restored over the next execution's
 * checkouts (the run's branch, which has the commits pushed before), the files
 * are as the last execution left them.
 */

/** Arguments: workspace, then pairs of repository directory and base commit. The tar on stdout. */
const SAVE = String.raw`set -e
ws="$1"; shift
cd "$ws"
mkdir -p .oz
rm -rf .oz/restore
list=.oz/snapshot.list; gone=.oz/snapshot.deleted
: > "$list"; : > "$gone"
repos=" "
while [ $# -ge 2 ]; do
  d="$1"; b="$2"; shift 2
  repos="$repos$d "
  [ -d "$d/.git" ] || continue
  git -C "$d" diff --name-only --no-renames -z --diff-filter=d "$b" -- | xargs -0 -r printf "$d/%s\0" >> "$list"
  git -C "$d" ls-files -z -o --exclude-standard | xargs -0 -r printf "$d/%s\0" >> "$list"
  git -C "$d" diff --name-only --no-renames -z --diff-filter=D "$b" -- | xargs -0 -r printf "$d/%s\0" >> "$gone"
done
for e in .[!.]* ..?* *; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  case "$repos" in *" $e "*) continue;; esac
  case "$e" in .cache|.npm|node_modules) continue;; esac
  printf '%s\0' "$e" >> "$list"
done
exec tar -c -f - --null -T "$list"`;

/** Arguments: workspace. Unpacks the parts written before, then removes what the last execution deleted. */
const RESTORE = String.raw`set -e
cd "$1"
cat .oz/restore/part-* | base64 -d | tar -x -f -
if [ -s .oz/snapshot.deleted ]; then xargs -0 -r rm -f -- < .oz/snapshot.deleted; fi
rm -rf .oz/restore`;

/** A part of the tar per write through the sandbox's init (base64 in one request line). */
const PART_BYTES = 3 * 1024 * 1024;

export type SavedWorkspace = { tar: Buffer } | { tooLarge: number } | { failed: string };

/** The workspace as a tar, or why not (larger than `maxBytes`, or the script failed). Runs in the platform phase. */
export async function saveWorkspace(sandbox: Sandbox, env: Record<string, string>, repos: readonly { dir: string; base: string }[], maxBytes: number): Promise<SavedWorkspace> {
  const chunks: Buffer[] = [];
  let size = 0;
  let stderr = '';
  const args = repos.flatMap((r) => [r.dir, r.base]);
  const result = await sandbox.exec(['/bin/sh', '-c', SAVE, 'oz-workspace-save', sandbox.workspacePath, ...args], {
    env,
    timeoutMs: 5 * 60_000,
    onOutput: (stream, chunk) => {
      if (stream === 'stderr') stderr = (stderr + chunk.toString()).slice(-1000);
      else if ((size += chunk.length) <= maxBytes) chunks.push(chunk);
    },
  });
  if (size > maxBytes) return { tooLarge: size };
  if (result.exitCode !== 0) return { failed: stderr.trim() || `exit code ${result.exitCode ?? result.signal}` };
  return { tar: Buffer.concat(chunks) };
}

/** Each repository's commit (its HEAD) as the sandbox sees it, in order; null where it cannot say. */
export async function workspaceHeads(sandbox: Sandbox, env: Record<string, string>, dirs: readonly string[]): Promise<(string | null)[]> {
  const heads: (string | null)[] = [];
  for (const dir of dirs) {
    let out = '';
    const result = await sandbox.exec(['git', '-C', dir, 'rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], {
      env,
      onOutput: (stream, chunk) => (stream === 'stdout' ? (out += chunk.toString()) : undefined),
    });
    heads.push(result.exitCode === 0 && /^[0-9a-f]{40,64}$/.test(out.trim()) ? out.trim() : null);
  }
  return heads;
}

/** Unpack a saved workspace over the checkouts (in the platform phase); throws with tar's words on failure. */
export async function restoreWorkspace(sandbox: Sandbox, env: Record<string, string>, tar: Buffer): Promise<void> {
  const parts = Math.max(1, Math.ceil(tar.length / PART_BYTES));
  for (let i = 0; i < parts; i++) {
    await sandbox.writeFile(`.oz/restore/part-${String(i).padStart(6, '0')}`, tar.subarray(i * PART_BYTES, (i + 1) * PART_BYTES).toString('base64'));
  }
  let stderr = '';
  const result = await sandbox.exec(['/bin/sh', '-c', RESTORE, 'oz-workspace-restore', sandbox.workspacePath], {
    env,
    timeoutMs: 5 * 60_000,
    onOutput: (stream, chunk) => (stream === 'stderr' ? (stderr = (stderr + chunk.toString()).slice(-1000)) : undefined),
  });
  if (result.exitCode !== 0) throw new Error(stderr.trim() || `exit code ${result.exitCode ?? result.signal}`);
}
