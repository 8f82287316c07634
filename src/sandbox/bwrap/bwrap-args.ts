import { lstatSync, readlinkSync } from 'node:fs';
import { IMAGE_LOADER } from '../image-node.js';
import { HOST_ETC, INIT_NODE, INIT_SCRIPT, OZ_CLI, SUPPORT_CLIENT } from '../sandbox-layout.js';

/** The uid and gid the sandbox's processes have inside. */
export const SANDBOX_UID = 1000;

/** Top-level system paths: merged-/usr links are recreated, real directories bound read-only. */
const SYSTEM_ROOTS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** An fd of the launch, placed by the backend at `fd` in the child's stdio. */
export interface FdMount {
  fd: number;
  dest: string;
}

/** A sandbox whose root is a run's image root (src/sandbox/bwrap/image-root.ts) instead of the host's system. */
export interface ImageProfile {
  /** The run's overlay root, bound read-write at `/`. */
  rootFd: number;
  /** The in-sandbox uid and gid of this launch (0 for setup, the image's user for the harness). */
  uid: number;
  gid: number;
  /** The host's loader and the platform node's libraries (src/sandbox/image-node.ts). */
  loaderFd: number;
  libs: readonly FdMount[];
}

export interface BwrapProfile {
  network: boolean;
  /** On an image root; absent: the host's system, read-only, as the sandbox user. */
  image?: ImageProfile;
  /** `/etc/passwd` and `/etc/group` contents, read from these fds (not on an image: -1). */
  passwdFd: number;
  groupFd: number;
  /** With network: `/etc/resolv.conf` and `/etc/hosts` contents. */
  resolvFd?: number;
  hostsFd?: number;
  initScriptFd: number;
  /** Arguments of the init (the egress bridge's socket under network `allowlist`). */
  initArgs?: readonly string[];
  nodeFd: number;
  infoFd: number;
  /** A compiled seccomp program (src/sandbox/bwrap/seccomp-filter.ts), where the architecture has one. */
  seccompFd?: number;
  /** Read-write: `/workspace` and `/tmp`. */
  workspaceFd: number;
  tmpFd: number;
  /** Read-only binds (repository mirrors, the harness-support socket's directory). */
  readOnly: readonly FdMount[];
  /** The harness-support client and its `oz` wrapper (file contents), where the run has a support socket. */
  supportClientFd?: number;
  ozWrapperFd?: number;
}

function systemRootArgs(): string[] {
  const args: string[] = ['--ro-bind', '/usr', '/usr'];
  for (const name of SYSTEM_ROOTS) {
    const path = `/${name}`;
    try {
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
      else if (stat.isDirectory()) args.push('--ro-bind', path, path);
    } catch {
      // Not on this host.
    }
  }
  return args;
}

/**
 * The bwrap command line of docs/design.md's profile: every namespace of its own
 * (the network one only when the policy is off: with network, the launcher
 * made one for slirp4netns), no capabilities, no nested user namespaces, a new
 * session, dies with the worker; read-only system, fresh /proc and /dev,
 * private /tmp, the workspace, and the init as the command.
 */
export function bwrapArgs(profile: BwrapProfile): string[] {
  const { image } = profile;
  const args = [
    '--unshare-user',
    '--uid',
    String(image ? image.uid : SANDBOX_UID),
    '--gid',
    String(image ? image.gid : SANDBOX_UID),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup',
    ...(profile.network ? [] : ['--unshare-net']),
    '--cap-drop',
    'ALL',
    '--disable-userns',
    '--assert-userns-disabled',
    '--new-session',
    '--die-with-parent',
    '--hostname',
    'oz-sandbox',
  ];
  if (image) {
    // The image's own /etc (its users, its certificates) stays; the platform's node brings its loader and libraries.
    // /oz is the platform's: a tmpfs over whatever the image (or an earlier setup) put there, read-only at the end.
    args.push('--bind-fd', String(image.rootFd), '/', '--tmpfs', '/oz', '--ro-bind-fd', String(image.loaderFd), IMAGE_LOADER);
    for (const lib of image.libs) args.push('--ro-bind-fd', String(lib.fd), lib.dest);
  } else {
    args.push(...systemRootArgs());
    for (const name of HOST_ETC) args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
    args.push('--ro-bind-data', String(profile.passwdFd), '/etc/passwd', '--ro-bind-data', String(profile.groupFd), '/etc/group');
  }
  if (profile.network && profile.resolvFd !== undefined && profile.hostsFd !== undefined) {
    args.push('--ro-bind-data', String(profile.resolvFd), '/etc/resolv.conf', '--ro-bind-data', String(profile.hostsFd), '/etc/hosts');
  }
  args.push(
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--bind-fd',
    String(profile.tmpFd),
    '/tmp',
    '--bind-fd',
    String(profile.workspaceFd),
    '/workspace',
    '--ro-bind-fd',
    String(profile.nodeFd),
    INIT_NODE,
    '--ro-bind-data',
    String(profile.initScriptFd),
    INIT_SCRIPT,
  );
  for (const mount of profile.readOnly) args.push('--ro-bind-fd', String(mount.fd), mount.dest);
  if (profile.supportClientFd !== undefined && profile.ozWrapperFd !== undefined) {
    args.push('--ro-bind-data', String(profile.supportClientFd), SUPPORT_CLIENT, '--perms', '0555', '--ro-bind-data', String(profile.ozWrapperFd), OZ_CLI);
  }
  // Read-only: the host profile's root (bwrap's tmpfs holding the mount points), or on an image its
  // /oz tmpfs (the image root itself is the run's writable layer); the binds under keep their flags.
  args.push('--remount-ro', image ? '/oz' : '/');
  args.push(
    '--chdir',
    '/workspace',
    '--clearenv',
    '--setenv',
    'PATH',
    '/usr/local/bin:/usr/bin:/bin',
    '--setenv',
    'HOME',
    '/workspace',
    // The platform's node reads no OpenSSL configuration of the root it runs on (an image's could load a module).
    '--setenv',
    'OPENSSL_CONF',
    '/dev/null',
    '--info-fd',
    String(profile.infoFd),
    ...(profile.seccompFd === undefined ? [] : ['--seccomp', String(profile.seccompFd)]),
    '--',
    INIT_NODE,
    INIT_SCRIPT,
    ...(profile.initArgs ?? []),
  );
  return args;
}

export function passwdFile(): string {
  return [
    'root:x:0:0:root:/root:/usr/sbin/nologin',
    `agent:x:${SANDBOX_UID}:${SANDBOX_UID}:Oz agent:/workspace:/bin/bash`,
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    '',
  ].join('\n');
}

export function groupFile(): string {
  return ['root:x:0:', `agent:x:${SANDBOX_UID}:`, 'nogroup:x:65534:', ''].join('\n');
}
