import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const GIT_ENV = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Fixture',
  GIT_AUTHOR_EMAIL: 'fixture@example.test',
  GIT_COMMITTER_NAME: 'Fixture',
  GIT_COMMITTER_EMAIL: 'fixture@example.test',
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' });
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

/**
 * A local bare repository at `<root>/<name>.git` with `files` on `main` and,
 * per extra branch, those files changed; returns its `file://` URL.
 */
export function makeBareRepo(root: string, name: string, files: Record<string, string>, branches: Record<string, Record<string, string>> = {}): string {
  const work = join(root, `${name}-work`);
  mkdirSync(work, { recursive: true });
  git(work, 'init', '--quiet', '--initial-branch=main');
  writeFiles(work, files);
  git(work, 'add', '-A');
  git(work, 'commit', '--quiet', '-m', 'initial');
  for (const [branch, changes] of Object.entries(branches)) {
    git(work, 'checkout', '--quiet', '-b', branch, 'main');
    writeFiles(work, changes);
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', `on ${branch}`);
  }
  git(work, 'checkout', '--quiet', 'main');
  const bare = join(root, `${name}.git`);
  git(root, 'clone', '--quiet', '--bare', work, bare);
  return `file://${bare}`;
}
