import { posix } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { RepoSpec } from '../../core/environment.js';
import { RunFailure } from '../../core/run-failure.js';
import type { WorkerEvent } from '../../core/worker-protocol.js';
import type { Sandbox } from '../../sandbox/sandbox-backend.js';
import { RedactedTail } from '../../secrets/redacting-buffer.js';
import type { Redactor } from '../../secrets/redactor.js';
import { workingDir } from '../../agent/working-dir.js';

export interface WorkspaceSetupInput {
  sandbox: Sandbox;
  repos: readonly RepoSpec[];
  setupCommands: readonly string[];
  /** The environment setup commands run with (the run's, without the prompt). */
  env: Record<string, string>;
  emit: (event: WorkerEvent) => void;
  /** Process output of a step, to the run's output collector (phase `setup`). */
  output: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** Stops further steps once the run is being stopped. */
  stopped: () => boolean;
  /** The run's secret values: a failure's message quotes output redacted, then cut. */
  redactor: Redactor;
  /**
   * The checkouts: `clone` from the mirrors (default); `refresh` (a warm start: the
   * snapshot's, each moved to its branch's commit in the mirror); `none` (they are
   * in place: only commands run, in the same working directory).
   */
  checkouts?: 'clone' | 'refresh' | 'none';
  /** On a refresh: each checkout's commit in the snapshot, and what its mirror has now; a checkout already there is left alone. */
  snapshotBases?: readonly string[];
  mirrorHeads?: readonly (string | null)[];
  /** On an image with no repository: its `WorkingDir`, where the commands start. */
  imageWorkingDir?: string | null;
  /** The first command's number in the `setup` events (commands after setup's continue its numbering). */
  firstIndex?: number;
  /** What the clones run with instead of `env` (on an image: the host system's PATH, for the platform's git). */
  cloneEnv?: Record<string, string>;
  /** Between the clones and the setup commands (on an image: the switch to setup as root); resolves to the shell setup commands run in. */
  beforeSetup?: () => Promise<{ shell: string }>;
  /** Per repository, a commit to check out (detached) instead of its branch's head (`config.branches`); null: the branch. */
  commits?: readonly (string | null)[];
  /** Right after the checkouts, before any setup command, with each checkout's commit (a follow-up's workspace is restored then). */
  afterCheckouts?: (dirs: readonly string[], heads: readonly string[]) => Promise<void>;
}

const TAIL_BYTES = 2000;

/** `https://host/owner/repo.git` → `repo`, unique within the workspace. */
export function checkoutDirs(repos: readonly RepoSpec[]): string[] {
  const seen = new Set<string>();
  return repos.map((repo) => {
    const base = (posix.basename(repo.url.replace(/[/:]+$/, '').replace(/^.*:/, '/')).replace(/\.git$/, '') || 'repo').replace(/[^A-Za-z0-9._-]/g, '_');
    let name = base.startsWith('.') ? `_${base}` : base;
    for (let n = 2; seen.has(name); n++) name = `${base}-${n}`;
    seen.add(name);
    return name;
  });
}

/** The last `TAIL_BYTES` of what a step printed, redacted before it is cut. */
class Tail extends RedactedTail {
  /** A character split across chunks must arrive whole, or a value holding it would not be recognised. */
  private readonly decoder = new StringDecoder('utf8');
  constructor(redactor: Redactor) {
    super(redactor, TAIL_BYTES);
  }
  pushBytes(chunk: Buffer): void {
    this.push(this.decoder.write(chunk));
  }
}

/** A status message's `reason`: at most 200 characters, redacted first. */
function reasonOf(command: string, redactor: Redactor): string {
  return redactor.redact(command).slice(0, 200);
}

/** A snapshot's checkout moved to what the mirror has now for its branch (or the default branch): fetched, then reset onto it. */
async function moveToMirror(
  sandbox: Sandbox,
  dir: string,
  mirror: string,
  branch: string | undefined,
  env: Record<string, string>,
  onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
): Promise<{ exitCode: number | null }> {
  // The snapshot's files have other inodes, owners and ctimes than its index recorded: compared
  // by size and mtime only (cp -a kept both), git does not read, and copy up, every file again.
  const stat = ['-c', 'core.checkStat=minimal', '-c', 'core.trustctime=false'];
  const fetched = await sandbox.exec(['git', ...stat, '-C', dir, 'fetch', '--quiet', '--no-tags', '--', mirror, branch ? `refs/heads/${branch}` : 'HEAD'], { env, onOutput });
  if (fetched.exitCode !== 0) return fetched;
  return sandbox.exec(['git', ...stat, '-C', dir, 'reset', '--quiet', '--hard', 'FETCH_HEAD'], { env, onOutput });
}

/**
 * Provisioning inside the sandbox (docs/design.md "Git and results"): each repository is cloned
 * from its read-only mirror at `sandbox.mountPaths[i]` (no second network
 * fetch), its branch checked out and `origin` pointed back at the real URL;
 * then the setup commands run in order in the run's working directory (the
 * repository's when there is exactly one, else `/workspace`:
 * src/agent/working-dir.ts), their output streamed. A failure throws a
 * {@link RunFailure} (FAILED environment_setup_failed) naming the step and the
 * tail of its output. Returns each repository's checked-out commit (the base
 * a run's changes are published against), read before any setup command ran.
 */
export async function setUpWorkspace(input: WorkspaceSetupInput): Promise<string[]> {
  const { sandbox, emit } = input;
  const dirs = checkoutDirs(input.repos);
  const bases: string[] = [];
  // The mirrors belong to the worker (another uid), and git refuses to serve
  // a repository someone else owns unless a global or system config trusts
  // it (git 2.39 ignores `-c safe.directory`). A config just for the clones:
  const checkouts = input.checkouts ?? 'clone';
  const repos = checkouts === 'none' ? [] : input.repos;
  // On a refresh, a mirror that has not moved since the snapshot: its checkout is what the run asks for.
  const unmovedAt = (i: number): string | null =>
    checkouts === 'refresh' && input.snapshotBases?.[i] !== undefined && input.snapshotBases[i] === input.mirrorHeads?.[i] ? input.snapshotBases[i] : null;
  let gitEnv: Record<string, string> = { ...(input.cloneEnv ?? input.env), GIT_TERMINAL_PROMPT: '0' };
  // Written only where git will run (a warm start whose mirrors have not moved runs none).
  if (repos.some((_repo, i) => unmovedAt(i) === null)) {
    const trust = sandbox.mountPaths.map((path) => `[safe]\n\tdirectory = ${path}\n`).join('');
    gitEnv = { ...gitEnv, GIT_CONFIG_GLOBAL: await sandbox.writeFile('.oz/clone.gitconfig', trust) };
  }
  for (const [i, repo] of repos.entries()) {
    if (input.stopped()) return bases;
    const dir = dirs[i] as string;
    const mirror = sandbox.mountPaths[i] as string;
    const unmoved = unmovedAt(i);
    const command = unmoved
      ? `${dir} is at ${unmoved.slice(0, 12)} already (from the snapshot)`
      : checkouts === 'refresh'
        ? `git fetch ${repo.url} ${repo.branch ?? 'HEAD'} && git reset --hard FETCH_HEAD (in ${dir}, from the snapshot)`
        : `git clone ${repo.branch ? `--branch ${repo.branch} ` : ''}${repo.url} ${dir}${input.commits?.[i] ? ` && git checkout ${input.commits[i]}` : ''}`;
    const index = `repo-${i}`;
    emit({ type: 'setup', at: Date.now(), data: { index, command, status: 'started' } });
    if (unmoved) {
      bases.push(unmoved);
      emit({ type: 'setup', at: Date.now(), data: { index, command, status: 'succeeded', exit_code: 0 } });
      continue;
    }
    const tail = new Tail(input.redactor);
    const onOutput = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
      tail.pushBytes(chunk);
      input.output(stream, chunk);
    };
    const commit = input.commits?.[i] ?? null;
    let clone =
      checkouts === 'refresh'
        ? await moveToMirror(sandbox, dir, mirror, repo.branch, gitEnv, onOutput)
        : await sandbox.exec(['git', 'clone', '--quiet', '--no-hardlinks', ...(repo.branch ? ['--branch', repo.branch] : []), '--', mirror, dir], {
            env: gitEnv,
            onOutput,
          });
    if (clone.exitCode === 0 && commit) clone = await sandbox.exec(['git', '-C', dir, 'checkout', '--quiet', '--detach', commit, '--'], { env: gitEnv, onOutput });
    let head = '';
    const ok =
      clone.exitCode === 0 &&
      (await sandbox.exec(['git', '-C', dir, 'remote', 'set-url', 'origin', repo.url], { env: gitEnv, onOutput })).exitCode === 0 &&
      (
        await sandbox.exec(['git', '-C', dir, 'rev-parse', 'HEAD'], {
          env: gitEnv,
          onOutput: (stream, chunk) => (stream === 'stdout' ? (head += chunk.toString()) : onOutput(stream, chunk)),
        })
      ).exitCode === 0 &&
      /^[0-9a-f]{40,64}$/.test(head.trim());
    bases.push(head.trim());
    emit({ type: 'setup', at: Date.now(), data: { index, command, status: ok ? 'succeeded' : 'failed', exit_code: clone.exitCode } });
    if (!ok) {
      const what = commit ? `commit ${commit} of ${repo.url}` : repo.branch ? `branch ${repo.branch} of ${repo.url}` : repo.url;
      throw RunFailure.setup(`Could not check out ${what}: ${tail.toString() || `git exited with code ${clone.exitCode}`}`, reasonOf(command, input.redactor));
    }
  }
  if (checkouts !== 'none' && input.afterCheckouts && !input.stopped()) await input.afterCheckouts(dirs, bases);
  const cwd = workingDir(dirs, input.imageWorkingDir);
  const shell = input.setupCommands.length > 0 && input.beforeSetup && !input.stopped() ? (await input.beforeSetup()).shell : '/bin/bash';
  for (const [n, command] of input.setupCommands.entries()) {
    if (input.stopped()) return bases;
    const i = (input.firstIndex ?? 0) + n;
    emit({ type: 'setup', at: Date.now(), data: { index: i, command, status: 'started' } });
    const tail = new Tail(input.redactor);
    const result = await sandbox.exec([shell, '-c', command], {
      env: input.env,
      cwd,
      onOutput: (stream, chunk) => {
        tail.pushBytes(chunk);
        input.output(stream, chunk);
      },
    });
    const ok = result.exitCode === 0;
    emit({ type: 'setup', at: Date.now(), data: { index: i, command, status: ok ? 'succeeded' : 'failed', exit_code: result.exitCode } });
    if (!ok && !input.stopped()) {
      const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
      const last = tail.toString();
      throw RunFailure.setup(`Setup command ${i + 1} \`${command}\` ${how}.${last ? ` Last output:\n${last}` : ''}`, reasonOf(command, input.redactor));
    }
  }
  return bases;
}
