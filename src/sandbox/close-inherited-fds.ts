import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/**
 * Close the descriptors this process inherited from whoever started it,
 * before it starts anything: Node (libuv) passes every descriptor without
 * close-on-exec to its children, so an inherited one would reach git and the
 * sandboxes (an open directory there is a way out of the jail). Node's own
 * descriptors all carry close-on-exec, stdio is kept, and so is the IPC
 * channel of a forked process (only that one descriptor). Linux only (it
 * reads /proc); a no-op elsewhere. Returns what it closed.
 */
export function closeInheritedFds(): number[] {
  if (process.platform !== 'linux') return [];
  // Node clears NODE_CHANNEL_FD from the environment; the pipe handle knows its fd.
  const channelFd = (process.channel as { fd?: number } | undefined)?.fd;
  const closed: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  for (const name of fds) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2 || fd === channelFd) continue;
    try {
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags === undefined || (Number.parseInt(flags, 8) & O_CLOEXEC) !== 0) continue;
      closeSync(fd);
      closed.push(fd);
    } catch {
      // Gone meanwhile (the directory listing's own descriptor).
    }
  }
  return closed;
}
