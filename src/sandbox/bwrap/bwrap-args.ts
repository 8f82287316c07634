import { lstatSync, readlinkSync } from 'node:fs';

/** The uid and gid the sandbox's processes have inside. */
export const SANDBOX_UID = 1000;

/** Top-level system paths: merged-/usr links are recreated, real directories bound read-only. */
const SYSTEM_ROOTS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** The /etc a sandbox needs (docs/design.md "Sandboxes"): certificates, time zone, the linker's cache. */
const ETC_ALWAYS = [
  'alternatives',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'localtime',
  'nsswitch.conf',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'os-release',
  'protocols',
  'services',
  'gai.conf',
];

/** An fd of the launch, placed by the backend at `fd` in the child's stdio. */
export interface FdMount {
  fd: number;
  dest: string;
}

export interface BwrapProfile {
  network: boolean;
  /** `/etc/passwd` and `/etc/group` contents, read from these fds. */
  passwdFd: number;
  groupFd: number;
  /** With network: `/etc/resolv.conf` and `/etc/hosts` contents. */
  resolvFd?: number;
  hostsFd?: number;
  initScriptFd: number;
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

export const INIT_NODE = '/oz/bin/node';
/** The in-sandbox `oz`: `oz harness-support` only. */
export const OZ_CLI = '/oz/bin/oz';

/** Where the sandbox finds the harness-support client, its socket's directory, and `oz` (/oz/bin/oz). */
export const SUPPORT_DIR = '/oz/support';
export const SUPPORT_CLIENT = '/oz/harness-support.mjs';
/** Worker-provided tools (agent CLIs): `/oz/tools/<name>`. */
export const TOOLS_DIR = '/oz/tools';
export const OZ_WRAPPER = `#!/bin/sh\nexec ${INIT_NODE} ${SUPPORT_CLIENT} "$@"\n`;
export const INIT_SCRIPT = '/oz/init.mjs';

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
  const args = [
    '--unshare-user',
    '--uid',
    String(SANDBOX_UID),
    '--gid',
    String(SANDBOX_UID),
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
    ...systemRootArgs(),
  ];
  for (const name of ETC_ALWAYS) args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
  args.push('--ro-bind-data', String(profile.passwdFd), '/etc/passwd', '--ro-bind-data', String(profile.groupFd), '/etc/group');
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
  args.push(
    // The root itself (bwrap's tmpfs holding the mount points) read-only; the
    // binds under it keep their own flags.
    '--remount-ro',
    '/',
    '--chdir',
    '/workspace',
    '--clearenv',
    '--setenv',
    'PATH',
    '/usr/local/bin:/usr/bin:/bin',
    '--setenv',
    'HOME',
    '/workspace',
    '--info-fd',
    String(profile.infoFd),
    ...(profile.seccompFd === undefined ? [] : ['--seccomp', String(profile.seccompFd)]),
    '--',
    INIT_NODE,
    INIT_SCRIPT,
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
