/**
 * The seccomp profile of every sandbox container (docs/sandboxes.md "The
 * docker backend"), in the engine's JSON format, passed as
 * `seccomp=<profile>`. Allow by default, refuse with EPERM:
 *
 * - what the bwrap backend's filter refuses (src/sandbox/bwrap/seccomp-filter.ts),
 *   for the same reasons: the agent shares a uid with the sandbox's init, so
 *   it must not attach to it (ptrace, process_vm_*, pidfd_getfd; with the
 *   engine's default profile a PTRACE_ATTACH freezes the init and the run
 *   with it), keyrings, bpf, perf, userfaultfd, io_uring (which the
 *   default of engines before Docker 25 allows) and AF_VSOCK sockets;
 * - what the engine's default profile refuses an unprivileged container:
 *   new namespaces (unshare, setns, clone with a namespace flag; clone3 says
 *   ENOSYS so the C library falls back to clone), mounts, kernel modules,
 *   kexec, reboot, swap, clocks, accounting and the other host-wide calls.
 *
 * A deny list, not the engine's allow list: one profile that every engine
 * (Docker, Podman) takes alike, readable in full here. Capabilities are all
 * dropped besides, so most of the second group fails twice.
 */
const DENIED = [
  // The multiplexed socket call of 32-bit ABIs (its AF_VSOCK argument is not a register the filter sees).
  'socketcall',
  // As bwrap's filter.
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'pidfd_getfd',
  'keyctl',
  'add_key',
  'request_key',
  'perf_event_open',
  'bpf',
  'userfaultfd',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  // Namespaces and mounts.
  'unshare',
  'setns',
  'mount',
  'umount',
  'umount2',
  'pivot_root',
  'chroot',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  'name_to_handle_at',
  'open_by_handle_at',
  // The kernel and the host.
  'init_module',
  'finit_module',
  'delete_module',
  'kexec_load',
  'kexec_file_load',
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'stime',
  'syslog',
  'quotactl',
  'quotactl_fd',
  'lookup_dcookie',
  'uselib',
  'ustat',
  'sysfs',
  '_sysctl',
  'nfsservctl',
  'vm86',
  'vm86old',
  'iopl',
  'ioperm',
  'kcmp',
  'fanotify_init',
  'personality',
  'create_module',
  'get_kernel_syms',
  'query_module',
];

/** clone(2) flags that make a namespace. */
const NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
const AF_VSOCK = 40;
const EPERM = 1;
const ENOSYS = 38;

/** The native ABI only: calls of another (i386 or x32 on x86-64, arm on arm64) are refused whole, as bwrap's filter does. */
const NATIVE: Partial<Record<NodeJS.Architecture, string>> = { x64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64' };

export function seccompProfile(architecture: NodeJS.Architecture = process.arch): string {
  const native = NATIVE[architecture];
  return JSON.stringify({
    defaultAction: 'SCMP_ACT_ALLOW',
    ...(native ? { architectures: [native] } : {}),
    syscalls: [
      { names: DENIED, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      ...NAMESPACE_FLAGS.map((flag) => ({
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
      { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index: 0, value: AF_VSOCK, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
    ],
  });
}
