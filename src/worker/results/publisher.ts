import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Octokit } from '@octokit/rest';
import type { RepoSpec } from '../../core/environment.js';
import type { Sandbox } from '../../sandbox/sandbox-backend.js';
import { FetchError, type HostGit } from '../host-git.js';
import type { MirrorCache } from '../provisioning/mirror-cache.js';
import type { ResultsSettings } from '../../core/config.js';
import { githubAuthEnv, githubRepo } from './forge.js';
import { outsideChangesNote } from './outside-changes.js';

export interface PublishInput {
  runId: string;
  title: string;
  summary: string;
  sandbox: Sandbox;
  /** The environment of processes in the sandbox (the run's). */
  env: Record<string, string>;
  repos: readonly RepoSpec[];
  /** Per repository: its directory in the workspace, the commit setup checked out, its host mirror. */
  dirs: readonly string[];
  bases: readonly string[];
  mirrors: readonly string[];
  /** Per repository, the branch to push to instead of `<prefix><run id>` (a branch the run started from, pushed without force); null: the run's own. */
  targets?: readonly (string | null)[];
  /** The team's `github-token` secret (`GITHUB_TOKEN`), if the run has it. */
  githubToken?: string;
  redact: (text: string) => string;
  artifact: (type: 'PULL_REQUEST' | 'BRANCH', data: Record<string, string>) => void;
  /**
   * Records the branch on the run before it is pushed, and resolves only once
   * the server has it (under a live lease): a worker that stops right after a
   * push has still left the branch on the run's record. A rejection stops
   * publishing before anything leaves the worker.
   */
  recordBranch?: (data: { branch: string; repository: string }) => Promise<void>;
  signal: AbortSignal;
}

/** Publishing failed; the message is for the run's user. */
export class PublishError extends Error {}

/** A bundle larger than this is refused (the run's changes, not its repository). */
const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
const API_TIMEOUT_MS = 30_000;
const NO_CHANGES = 3;
/** A bundle's header (its prerequisites and one ref) is far smaller than this. */
const MAX_BUNDLE_HEADER = 64 * 1024;

/**
 * The tip of `ref` in a v2 bundle and where its pack starts. The bundle comes
 * from the sandbox, so it is read as hostile: one ref, the run's branch,
 * nothing else; git only ever sees the pack behind the header.
 */
export function readBundleHeader(head: Buffer, ref: string): { tip: string; packOffset: number } {
  const text = head.toString('latin1');
  const signature = '# v2 git bundle\n';
  const end = text.indexOf('\n\n');
  if (!text.startsWith(signature) || end < 0) throw new FetchError('the bundle has no v2 bundle header');
  const refs: [string, string][] = [];
  for (const line of text
    .slice(signature.length, end)
    .split('\n')
    .filter((l) => l !== '')) {
    if (/^-[0-9a-f]{40}( .*)?$/.test(line)) continue;
    const match = /^([0-9a-f]{40}) (\S+)$/.exec(line);
    if (!match) throw new FetchError('the bundle header has a line that is neither a prerequisite nor a ref');
    refs.push([match[1] as string, match[2] as string]);
  }
  const [only, ...others] = refs;
  if (!only || others.length > 0 || only[1] !== ref) throw new FetchError(`the bundle must hold exactly ${ref}`);
  return { tip: only[0], packOffset: end + 2 };
}

/**
 * The sandbox's half (docs/design.md "Git and results"): commit whatever changed, point
 * `refs/heads/<branch>` at it and write a bundle of what is new since the
 * base to stdout. Runs as the sandbox user, on the agent's own `.git`; exit 3
 * when there is nothing new. Arguments: dir, author name, email, message, branch, base.
 */
const COMMIT_AND_BUNDLE = [
  'set -e',
  'cd -- "$1"',
  'git add -A',
  'if ! git diff --cached --quiet; then git -c user.name="$2" -c user.email="$3" -c commit.gpgsign=false commit -q --no-verify -m "$4"; fi',
  `if [ "$(git rev-parse HEAD)" = "$6" ]; then exit ${NO_CHANGES}; fi`,
  'git update-ref "refs/heads/$5" HEAD',
  'git bundle create - "refs/heads/$5" "^$6"',
].join('\n');

/**
 * Turns a run's changes into a branch and, for GitHub, a pull request,
 * without trusting the workspace: the commit is made inside the sandbox, only
 * a bundle (plain data) comes out, and host-side git runs on a bare
 * repository the worker made (hooks off, no user config), which borrows the
 * mirror's objects and pushes with the team's token.
 */
export class Publisher {
  private readonly workDir: string;

  constructor(
    private readonly settings: ResultsSettings,
    private readonly mirrors: MirrorCache,
    cacheDir: string,
  ) {
    this.workDir = join(cacheDir, 'publish');
    mkdirSync(this.workDir, { recursive: true, mode: 0o700 });
    chmodSync(this.workDir, 0o700);
  }

  /** Git environment for fetching `url` into a mirror with the team's GitHub token (private repositories). */
  fetchAuth(url: string, token: string | undefined): Record<string, string> {
    return githubAuthEnv(url, token, this.settings);
  }

  /**
   * Publish each repository that changed; returns lines for the run's
   * summary, the last one naming what changed outside every repository (it
   * is looked for first: nothing is pushed from a sandbox that fails there).
   */
  async publish(input: PublishInput): Promise<string[]> {
    const own = `${this.settings.branchPrefix}${input.runId}`;
    const outside = await outsideChangesNote(input.sandbox, input.env, input.dirs);
    const notes: string[] = [];
    for (const [i, repo] of input.repos.entries()) {
      const target = input.targets?.[i] ?? null;
      const branch = target ?? own;
      const dir = input.dirs[i] as string;
      const work = mkdtempSync(join(this.workDir, `${input.runId}-`));
      try {
        const bundle = join(work, 'changes.bundle');
        if (!(await this.commitAndBundle(input, dir, branch, input.bases[i] as string, bundle))) {
          notes.push(`No changes in ${dir}: nothing was published.`);
          continue;
        }
        await input.recordBranch?.({ branch, repository: repo.url });
        await this.push(input, repo, input.mirrors[i] as string, work, bundle, branch, target === null);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
      const github = githubRepo(repo.url, this.settings);
      if (github && input.githubToken) {
        const pr = await this.pullRequest(input, repo, github, branch);
        input.artifact('PULL_REQUEST', { url: pr.url, branch });
        notes.push(`${pr.reused ? 'Updated' : 'Opened'} pull request ${pr.url} (branch ${branch}).`);
      } else {
        if (!input.recordBranch) input.artifact('BRANCH', { branch, repository: repo.url });
        notes.push(`Pushed branch ${branch} to ${repo.url}${github ? ' (no github-token secret, so no pull request)' : ''}.`);
      }
    }
    if (outside) notes.push(input.redact(outside));
    return notes;
  }

  /** Commit in the sandbox and write the bundle to `bundle` (streamed to disk, not held); false when nothing changed. */
  private async commitAndBundle(input: PublishInput, dir: string, branch: string, base: string, bundle: string): Promise<boolean> {
    const fd = openSync(bundle, 'w', 0o600);
    let size = 0;
    let stderr = '';
    const message = `${input.title}\n\n${input.redact(input.summary)}\n\nOz run ${input.runId}`;
    const result = await input.sandbox
      .exec(['/bin/sh', '-c', COMMIT_AND_BUNDLE, 'oz-publish', dir, this.settings.authorName, this.settings.authorEmail, message, branch, base], {
        env: { ...input.env, GIT_TERMINAL_PROMPT: '0' },
        timeoutMs: 10 * 60_000,
        onOutput: (stream, chunk) => {
          if (stream === 'stderr') stderr = (stderr + chunk.toString()).slice(-2000);
          else if ((size += chunk.length) <= MAX_BUNDLE_BYTES) writeSync(fd, chunk);
        },
      })
      .finally(() => closeSync(fd));
    if (result.exitCode === NO_CHANGES) return false;
    if (result.exitCode !== 0) throw new PublishError(input.redact(`Could not commit the changes in ${dir}: ${stderr.trim() || `exit code ${result.exitCode ?? result.signal}`}`));
    if (size > MAX_BUNDLE_BYTES) throw new PublishError(`The changes in ${dir} are larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB; nothing was published.`);
    return true;
  }

  private async push(input: PublishInput, repo: RepoSpec, mirror: string, work: string, bundle: string, branch: string, force: boolean): Promise<void> {
    const git = this.mirrors.git;
    const bare = join(work, 'repo.git');
    await git.run(['init', '--bare', '--quiet', bare], { signal: input.signal });
    // The bundle's prerequisite (the base) is in the mirror: borrow its objects, read-only.
    writeFileSync(join(bare, 'objects', 'info', 'alternates'), `${join(mirror, 'objects')}\n`);
    const ref = `refs/heads/${branch}`;
    try {
      await this.unbundle(git, bare, bundle, ref, input.signal);
    } catch (error) {
      if (!(error instanceof FetchError)) throw error;
      throw new PublishError(input.redact(`The run's changes could not be read: ${error.message}`));
    }
    let destination;
    try {
      destination = await this.mirrors.destination(repo.url, 'push to');
    } catch (error) {
      if (!(error instanceof FetchError)) throw error;
      throw new PublishError(input.redact(`The push of ${branch} failed: ${error.message}`));
    }
    try {
      // The run's own branch is forced (a retried publish); a branch it started from only moves forward.
      await git.run(['--git-dir', bare, 'push', '--quiet', ...(force ? ['--force'] : []), destination.url, `${ref}:${ref}`], {
        signal: input.signal,
        env: { ...githubAuthEnv(repo.url, input.githubToken, this.settings), ...destination.env },
        config: destination.config,
      });
    } catch (error) {
      if (!(error instanceof FetchError)) throw error;
      if (error.failure === 'unreachable')
        throw new PublishError(input.redact(`The push of ${branch} failed: ${this.mirrors.unreachable(repo.url, 'push to', error.detail).message}`));
      if (error.failure === 'redirect')
        throw new PublishError(input.redact(`The push of ${branch} to ${repo.url} failed: the remote answers with a redirect, which this worker does not follow`));
      if (error.failure === 'limit') throw new PublishError(input.redact(`The push of ${branch} to ${repo.url} failed: ${error.message}`));
      // Someone else's commits on the branch since the run started on it: the run's are not forced over them.
      const moved = /\[rejected\].*\((fetch first|non-fast-forward)\)/.test(error.message)
        ? ` ${branch} has commits this run does not have (someone pushed to it since the run started), and a run never forces its commits over them: its changes were not pushed. `
        : ' ';
      throw new PublishError(input.redact(`The push of ${branch} to ${repo.url} was rejected:${moved}${error.message}`));
    }
  }

  /**
   * Bring the bundle's objects into `bare` and point `ref` at its tip. Not
   * `git fetch <bundle>`: git 2.39 does not fsck what it reads from a bundle.
   * index-pack --strict checks every object (and that every object they name
   * exists, here or in the mirror), under the host-git limits, so what is
   * pushed has been checked.
   */
  private async unbundle(git: HostGit, bare: string, bundle: string, ref: string, signal: AbortSignal): Promise<void> {
    const fd = openSync(bundle, 'r');
    let tip: string;
    try {
      const head = Buffer.alloc(MAX_BUNDLE_HEADER);
      const header = readBundleHeader(head.subarray(0, readSync(fd, head, 0, head.length, 0)), ref);
      tip = header.tip;
      // index-pack reads the pack from the descriptor's offset: move it past the header.
      for (let skipped = 0; skipped < header.packOffset;) {
        const n = readSync(fd, head, 0, header.packOffset - skipped, null);
        if (n === 0) throw new FetchError('the bundle ends inside its header');
        skipped += n;
      }
      await git.run(['--git-dir', bare, 'index-pack', '--stdin', '--fix-thin', '--strict', `--max-input-size=${MAX_BUNDLE_BYTES}`], { signal, stdin: fd });
    } finally {
      closeSync(fd);
    }
    await git.run(['--git-dir', bare, 'update-ref', ref, tip], { signal });
  }

  /** The open pull request of `branch`, or a new one: publishing again never opens a second. */
  private async pullRequest(input: PublishInput, repo: RepoSpec, github: { owner: string; repo: string }, branch: string): Promise<{ url: string; reused: boolean }> {
    const octokit = new Octokit({
      auth: input.githubToken,
      baseUrl: this.settings.githubApiUrl,
      userAgent: 'oz-worker',
      request: { signal: AbortSignal.any([input.signal, AbortSignal.timeout(API_TIMEOUT_MS)]) },
    });
    try {
      const open = await octokit.rest.pulls.list({ ...github, head: `${github.owner}:${branch}`, state: 'open', per_page: 1 });
      const existing = open.data[0];
      if (existing) return { url: existing.html_url, reused: true };
      const base = repo.branch ?? (await octokit.rest.repos.get(github)).data.default_branch;
      const body = `${input.redact(input.summary)}\n\n---\nOpened by Oz run \`${input.runId}\`.`;
      const created = await octokit.rest.pulls.create({ ...github, head: branch, base, title: input.title, body });
      return { url: created.data.html_url, reused: false };
    } catch (error) {
      const status = (error as { status?: number }).status;
      throw new PublishError(
        input.redact(`Pushed ${branch}, but the pull request could not be opened${status ? ` (GitHub answered ${status})` : ''}: ${(error as Error).message}`),
      );
    }
  }
}
