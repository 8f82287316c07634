import { arch } from 'node:process';

/**
 * The seccomp filter every bwrap sandbox runs under (bwrap `--seccomp FD`
 * takes a compiled classic-BPF program). Written by hand because the only
 * library for it, libseccomp, is a native dependency with no maintained Node
 * binding, and this program is short: check the architecture, then refuse a
 * fixed list of system calls with EPERM.
 *
 * Why these calls: the sandbox's processes share one uid with the sandbox's
 * init, so without the filter they could attach to it (ptrace,
 * process_vm_readv/writev, pidfd_getfd) and read what it holds; keyrings are
 * shared with the host's session (keyctl, add_key, request_key); the rest are
 * kernel attack surface no coding agent needs (bpf, perf_event_open,
 * userfaultfd, io_uring — whose operations also bypass this very filter —
 * and AF_VSOCK sockets, which reach the hypervisor's host on a VM). Calls of
 * another ABI (i386 or x32 on x86-64) are refused whole, since their numbers
 * differ from the list.
 */

interface ArchTable {
  auditArch: number;
  /** The x32 ABI's marker bit on x86-64 (calls with it are another ABI). */
  x32Bit?: number;
  calls: Record<DeniedCall, number>;
  /** socket(2): refused for the address families in DENIED_FAMILIES only. */
  socket: number;
}

type DeniedCall =
  | 'ptrace'
  | 'process_vm_readv'
  | 'process_vm_writev'
  | 'pidfd_getfd'
  | 'keyctl'
  | 'add_key'
  | 'request_key'
  | 'perf_event_open'
  | 'bpf'
  | 'userfaultfd'
  | 'io_uring_setup'
  | 'io_uring_enter'
  | 'io_uring_register';

/** AF_VSOCK (linux/socket.h). */
const AF_VSOCK = 40;
const DENIED_FAMILIES = [AF_VSOCK];

const ARCHES: Partial<Record<NodeJS.Architecture, ArchTable>> = {
  x64: {
    auditArch: 0xc000003e,
    x32Bit: 0x40000000,
    calls: {
      ptrace: 101,
      process_vm_readv: 310,
      process_vm_writev: 311,
      pidfd_getfd: 438,
      keyctl: 250,
      add_key: 248,
      request_key: 249,
      perf_event_open: 298,
      bpf: 321,
      userfaultfd: 323,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
    },
    socket: 41,
  },
  arm64: {
    auditArch: 0xc00000b7,
    calls: {
      ptrace: 117,
      process_vm_readv: 270,
      process_vm_writev: 271,
      pidfd_getfd: 438,
      keyctl: 219,
      add_key: 217,
      request_key: 218,
      perf_event_open: 241,
      bpf: 280,
      userfaultfd: 282,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
    },
    socket: 198,
  },
};

// Classic BPF opcodes and seccomp constants (linux/filter.h, linux/seccomp.h).
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
/** Offsets in struct seccomp_data (args are u64; the low half comes first on these little-endian arches). */
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** The filter for this machine's architecture, or null where there is none (the sandbox then runs without). */
export function seccompFilter(architecture: NodeJS.Architecture = arch): Buffer | null {
  const table = ARCHES[architecture];
  if (!table) return null;
  const denied = Object.values(table.calls);
  const program: Insn[] = [];
  // Jump targets are relative to the next instruction; `allow` is the one
  // before last, `deny` the last.
  const total = 2 + 1 + (table.x32Bit ? 1 : 0) + denied.length + 1 + 1 + DENIED_FAMILIES.length + 2;
  const toDeny = (at: number): number => total - 1 - (at + 1);
  const toAllow = (at: number): number => total - 2 - (at + 1);
  program.push({ code: LD_W_ABS, jt: 0, jf: 0, k: ARCH });
  program.push({ code: JEQ_K, jt: 0, jf: toDeny(1), k: table.auditArch });
  program.push({ code: LD_W_ABS, jt: 0, jf: 0, k: NR });
  if (table.x32Bit) program.push({ code: JGE_K, jt: toDeny(program.length), jf: 0, k: table.x32Bit });
  for (const nr of denied) program.push({ code: JEQ_K, jt: toDeny(program.length), jf: 0, k: nr });
  // socket(family, …): any other call is allowed; a denied family is not.
  // The kernel takes the family as an int, so its low 32 bits are the family.
  program.push({ code: JEQ_K, jt: 0, jf: toAllow(program.length), k: table.socket });
  program.push({ code: LD_W_ABS, jt: 0, jf: 0, k: ARG0_LOW });
  for (const family of DENIED_FAMILIES) program.push({ code: JEQ_K, jt: toDeny(program.length), jf: 0, k: family });
  program.push({ code: RET_K, jt: 0, jf: 0, k: RET_ALLOW });
  program.push({ code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | EPERM });
  if (program.length !== total) throw new Error('seccomp filter: miscounted instructions');
  // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, native (little) endian on both arches.
  const out = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(insn.jt, i * 8 + 2);
    out.writeUInt8(insn.jf, i * 8 + 3);
    out.writeUInt32LE(insn.k, i * 8 + 4);
  });
  return out;
}
