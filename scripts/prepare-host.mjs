#!/usr/bin/env node
// First start on a fresh machine (`npm start` runs this first): the embedded
// worker sandboxes every run with bubblewrap, so the host tools it needs are
// installed here when they can be (root, apt-get), or the exact command to
// run is printed and the start stops. It never falls back to running
// without isolation: that is `oz server --backend direct`, chosen on purpose.
// Node built-ins only: this runs before `npm run build`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const PATH = process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const onPath = (command) => PATH.split(delimiter).some((dir) => dir && existsSync(join(dir, command)));

/** command → the Debian/Ubuntu package that has it. */
const NEEDED = [
  ['bwrap', 'bubblewrap'],
  ['slirp4netns', 'slirp4netns'],
  ['setpriv', 'util-linux'],
  ['prlimit', 'util-linux'],
  ['git', 'git'],
  ['mkfs.ext4', 'e2fsprogs'],
];

/**
 * What environments' images and warm starts need, and network `on` (its rules
 * keep runs off internal addresses), on a root worker: installed with the
 * rest when it can be, else only named.
 */
const FOR_IMAGES = [
  ['skopeo', 'skopeo'],
  ['umoci', 'umoci'],
  ['patchelf', 'patchelf'],
  ['nft', 'nftables'],
];

if (process.platform !== 'linux' || process.argv.includes('--backend=direct')) process.exit(0);
const root = process.getuid?.() === 0;
const apt = onPath('apt-get');
const missing = [...new Set(NEEDED.filter(([command]) => !onPath(command)).map(([, pkg]) => pkg))];
const optional = root ? [...new Set(FOR_IMAGES.filter(([command]) => !onPath(command)).map(([, pkg]) => pkg))] : [];
if (missing.length === 0 && optional.length > 0) {
  if (apt) {
    process.stderr.write(`oz: installing what environments' images and network "on" need: ${optional.join(', ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', ...optional], { stdio: 'inherit', env }) : update;
    if (install.status !== 0)
      process.stderr.write(
        `oz: could not install ${optional.join(', ')}: runs will ignore environments' images (docker_image), and runs with network "on" will not start, until they are\n`,
      );
  } else {
    process.stderr.write(
      `oz: ${optional.join(', ')} not installed: runs will ignore environments' images (docker_image), and runs with network "on" will not start, until they are\n`,
    );
  }
}
if (missing.length === 0) process.exit(0);
missing.push(...(apt ? optional : []));
const command = `apt-get install -y ${missing.join(' ')}`;
if (root && apt) {
  process.stderr.write(`oz: installing what sandboxes need: ${missing.join(', ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env }) : update;
  if (install.status === 0) process.exit(0);
  process.stderr.write(`oz: "${command}" failed; install these packages and run npm start again: ${missing.join(', ')}\n`);
  process.exit(1);
}
process.stderr.write(
  [
    `oz: the sandbox backend needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not installed.`,
    apt
      ? `  Install: sudo ${command}`
      : `  Install the packages that provide: ${NEEDED.filter(([, pkg]) => missing.includes(pkg))
          .map(([c]) => c)
          .join(', ')}`,
    '  Then run npm start again. (To run WITHOUT isolation, for trusted code only: node bin/oz.js server --backend direct.)',
    '',
  ].join('\n'),
);
process.exit(1);
