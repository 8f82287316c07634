import { readdirSync, readFileSync } from 'node:fs';
import { afterAll } from 'vitest';

/**
 * vitest setupFiles entry: after each test file's own afterAll hooks, no
 * process this test worker started may still run. A leak fails the file
 * (naming each process) instead of being cleaned silently, so a test that
 * forgets to stop a server, worker, claimer or git daemon is found where it
 * is written. The leaked processes are killed (by PID) so they do not spoil
 * later files.
 *
 * Setup files' hooks are registered first and vitest runs after-hooks as a
 * stack, so this one runs last.
 */
const GRACE_MS = 5000;

interface ProcessInfo {
  pid: number;
  ppid: number;
  state: string;
  command: string;
}

function processes(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may itself hold spaces or parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      found.push({ pid: Number(entry), ppid: Number(fields[1]), state: fields[0] ?? '', command });
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** Live (not zombie) descendants of this process. */
export function liveDescendants(root = process.pid): ProcessInfo[] {
  const all = processes();
  const children = new Map<number, ProcessInfo[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const result: ProcessInfo[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (child.state !== 'Z') result.push(child);
      queue.push(child.pid);
    }
  }
  return result;
}

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let leaked = liveDescendants();
  while (leaked.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    leaked = liveDescendants();
  }
  if (leaked.length === 0) return;
  for (const p of leaked) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  throw new Error(`this test file left ${leaked.length} process(es) running (killed now):\n${leaked.map((p) => `  ${p.pid}: ${p.command.slice(0, 200)}`).join('\n')}`);
}, GRACE_MS + 5000);
