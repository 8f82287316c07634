import { spawn } from 'node:child_process';
import { closeSync, openSync, readlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/*
 * Idmapped bind mounts (mount_setattr(2) with MOUNT_ATTR_IDMAP, Linux 5.12+):
 * a shared, read-only image root whose files are owned by host root appears,
 * through the mount, owned by one run's unprivileged host uid, so the run's
 * in-sandbox root owns its image's files (and can install packages into its
 * writable layer) without a per-run copy or chown of the image. No tool on
 * the supported hosts does this (util-linux gains `X-mount.idmap` only in
 * 2.39; Debian 12 has 2.38), so the three system calls are made here through
 * koffi, a maintained FFI library; the user namespace that carries the
 * mapping is a short-lived `unshare --user` process whose maps the (root)
 * worker writes.
 */

const SYS_OPEN_TREE = 428;
const SYS_MOVE_MOUNT = 429;
const SYS_MOUNT_SETATTR = 442;
const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const AT_RECURSIVE = 0x8000;
const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const MOUNT_ATTR_RDONLY = 0x1;
const MOUNT_ATTR_NOSUID = 0x2;
const MOUNT_ATTR_NODEV = 0x4;
const MOUNT_ATTR_IDMAP = 0x100000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const NS_WAIT_MS = 2000;

interface Syscalls {
  syscall: (...args: unknown[]) => number | bigint;
  errno: () => number;
  /** `struct mount_attr *`, for the variadic call. */
  attrPointer: unknown;
}

let loaded: Syscalls | null = null;

function syscalls(): Syscalls {
  if (loaded) return loaded;
  if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error(`idmapped mounts are not supported on ${process.arch}`);
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const attr = koffi.struct('oz_mount_attr', { attr_set: 'uint64_t', attr_clr: 'uint64_t', propagation: 'uint64_t', userns_fd: 'uint64_t' });
  loaded = {
    syscall: libc.func('long syscall(long number, ...)') as unknown as Syscalls['syscall'],
    errno: () => koffi.errno(),
    attrPointer: koffi.pointer(attr),
  };
  return loaded;
}

/** A system call's result, or its errno as an error. These three calls have the same numbers on x64 and arm64 (asm-generic, 424 and up). */
function check(result: number | bigint, call: string): number {
  const value = Number(result);
  if (value < 0) {
    const errno = syscalls().errno();
    throw new Error(`${call} failed (errno ${errno})`);
  }
  return value;
}

/** A user namespace whose only mapping is `0 → hostUid` (uids and gids), open as an fd; the caller closes it. */
async function mappingNamespace(hostUid: number, unshare: string): Promise<number> {
  const own = readlinkSync('/proc/self/ns/user');
  const holder = spawn(unshare, ['--user', '--', 'sleep', '30'], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
  try {
    const pid = holder.pid;
    if (pid === undefined) throw new Error('unshare did not start');
    const deadline = Date.now() + NS_WAIT_MS;
    for (;;) {
      let ns = '';
      try {
        ns = readlinkSync(`/proc/${pid}/ns/user`);
      } catch {
        // Not there yet, or exited.
      }
      if (ns && ns !== own && readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep')) break;
      if (holder.exitCode !== null || Date.now() > deadline) throw new Error('unshare --user did not make a user namespace');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    writeFileSync(`/proc/${pid}/uid_map`, `0 ${hostUid} 1\n`);
    writeFileSync(`/proc/${pid}/gid_map`, `0 ${hostUid} 1\n`);
    return openSync(`/proc/${pid}/ns/user`, 'r');
  } finally {
    holder.kill('SIGKILL');
  }
}

/**
 * Bind each `source` at its `target` (an existing directory), read-only,
 * nosuid and nodev, with every file owned by host uid 0 there appearing
 * owned by `hostUid`. Needs root; throws naming the call that failed.
 */
export async function idmappedBind(binds: readonly { source: string; target: string }[], hostUid: number, unshare: string): Promise<void> {
  const { syscall, attrPointer } = syscalls();
  const userns = await mappingNamespace(hostUid, unshare);
  try {
    for (const { source, target } of binds) {
      let tree = -1;
      try {
        tree = check(syscall(SYS_OPEN_TREE, 'int', AT_FDCWD, 'str', source, 'uint', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), 'open_tree');
        const settings = { attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, attr_clr: 0, propagation: 0, userns_fd: userns };
        check(syscall(SYS_MOUNT_SETATTR, 'int', tree, 'str', '', 'uint', AT_EMPTY_PATH | AT_RECURSIVE, attrPointer, settings, 'size_t', 32), 'mount_setattr');
        check(syscall(SYS_MOVE_MOUNT, 'int', tree, 'str', '', 'int', AT_FDCWD, 'str', target, 'uint', MOVE_MOUNT_F_EMPTY_PATH), 'move_mount');
      } finally {
        if (tree >= 0) closeSync(tree);
      }
    }
  } finally {
    closeSync(userns);
  }
}
