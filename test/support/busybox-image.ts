import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { draftImage } from './umoci-image.js';

/** Debian's static busybox (package busybox-static): a whole userland in one file with no libc to load. */
export const STATIC_BUSYBOX = '/bin/busybox';

/** Null when a static busybox and umoci are there (installing them if it can: the test machine runs as root), else why not. */
export function busyboxImageMissing(): string | null {
  const isStatic = (): boolean => {
    try {
      return existsSync(STATIC_BUSYBOX) && !execFileSync('ldd', [STATIC_BUSYBOX], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).includes('=>');
    } catch {
      return existsSync(STATIC_BUSYBOX); // ldd exits 1 on a static binary
    }
  };
  const has = (command: string): boolean => {
    try {
      execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!isStatic() || !has('umoci') || !has('patchelf')) {
    try {
      execFileSync('apt-get', ['install', '-y', 'busybox-static', 'umoci', 'patchelf'], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        timeout: 300_000,
      });
    } catch {
      // Reported below.
    }
  }
  if (!isStatic()) return 'no static busybox (apt-get install busybox-static)';
  if (!has('umoci')) return 'umoci is not installed (apt-get install umoci)';
  if (!has('patchelf')) return 'patchelf is not installed (apt-get install patchelf)';
  return null;
}

export interface BusyboxImageOptions {
  /** Extra files, by absolute path in the image. */
  files?: Record<string, string | Buffer>;
  env?: string[];
  user?: string;
  workingDir?: string;
}

/**
 * An image with nothing but a static busybox (its applets as links in
 * /bin), an /etc/os-release naming it, a user `dev` (1000) and the given
 * files: no libc, no git, no node. Made with umoci (no Docker); returns the
 * layout reference `layout:tag`, and the layout's unpacked root is `rootfs`.
 */
export function buildBusyboxImage(dir: string, options: BusyboxImageOptions = {}): { reference: string; bundle: string } {
  const image = draftImage(dir);
  const { rootfs } = image;
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync(STATIC_BUSYBOX, join(rootfs, 'bin', 'busybox'));
  const applets = execFileSync(STATIC_BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) if (applet !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', applet));
  const files: Record<string, string | Buffer> = {
    '/etc/os-release': 'ID=oz-test-busybox\nNAME="Oz test busybox"\n',
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000:dev:/home/dev:/bin/sh\n',
    '/etc/group': 'root:x:0:\ndev:x:1000:\n',
    ...options.files,
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(rootfs, path, '..'), { recursive: true });
    writeFileSync(join(rootfs, path), content, { mode: 0o755 });
  }
  mkdirSync(join(rootfs, 'home', 'dev'), { recursive: true });
  image.repack();
  image.configure([
    ...(options.env ?? []).map((entry) => `--config.env=${entry}`),
    ...(options.user ? [`--config.user=${options.user}`] : []),
    ...(options.workingDir ? [`--config.workingdir=${options.workingDir}`] : []),
  ]);
  return { reference: image.reference, bundle: image.bundle };
}
