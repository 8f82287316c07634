import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Host pids, read from /proc (no pgrep, which other tests' processes would match too). */
function pids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The state letter of a process (R, S, T, Z…), or null once it is gone. */
export function processState(pid: number): string | null {
  const stat = read(`/proc/${pid}/stat`);
  return stat ? (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null) : null;
}

/** Live (not zombie) processes with `marker` as one of their arguments. */
export function pidsWithArg(marker: string): number[] {
  return pids().filter((pid) => {
    const cmdline = read(`/proc/${pid}/cmdline`);
    return cmdline !== null && cmdline.split('\0').includes(marker) && processState(pid) !== 'Z';
  });
}

/** Live processes in a cgroup whose path contains `fragment` (any hierarchy), or holding a descriptor below `dir`. */
export function pidsOf(match: { cgroup?: string; holding?: string }): number[] {
  return pids().filter((pid) => {
    if (pid === process.pid || processState(pid) === 'Z' || processState(pid) === null) return false;
    if (match.cgroup && (read(`/proc/${pid}/cgroup`) ?? '').includes(match.cgroup)) return true;
    if (match.holding) {
      try {
        return readdirSync(`/proc/${pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(match.holding as string);
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    }
    return false;
  });
}

/** A cgroup's control file, found through a process in it (`controller`: 'cpu', or '' for v2). */
export function cgroupFileOf(pid: number, controller: string, file: string): string | null {
  const lines = (read(`/proc/${pid}/cgroup`) ?? '').split('\n');
  const mine = lines.map((line) => line.split(':')).find(([, controllers]) => (controller === '' ? controllers === '' : (controllers ?? '').split(',').includes(controller)));
  const v2 = lines.map((line) => line.split(':')).find(([id]) => id === '0');
  const [path, wanted] = mine ? [mine[2], controller] : v2 ? [v2[2], ''] : [undefined, ''];
  if (path === undefined) return null;
  for (const line of (read('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const point = left.split(' ')[4] ?? '';
    const [type, , options = ''] = right.split(' ');
    if ((wanted === '' && type === 'cgroup2') || (wanted !== '' && type === 'cgroup' && options.split(',').includes(wanted))) {
      const text = read(`${point}${path}/${file}`);
      if (text !== null) return text;
    }
  }
  return null;
}

/** Live children of `pid` whose command line contains `fragment`. */
export function childrenOf(pid: number, fragment: string): number[] {
  return pids().filter((child) => {
    const stat = read(`/proc/${child}/stat`);
    const ppid = stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : NaN;
    return ppid === pid && (read(`/proc/${child}/cmdline`) ?? '').includes(fragment);
  });
}

/** Cgroup directories (in every hierarchy, a few levels deep) whose name starts with `prefix`. */
export function cgroupsNamed(prefix: string): string[] {
  const found: string[] = [];
  const points = (read('/proc/self/mountinfo') ?? '')
    .split('\n')
    .filter((line) => / - cgroup2? /.test(line))
    .map((line) => line.split(' ')[4] as string);
  const walk = (dir: string, depth: number): void => {
    let names: string[] = [];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(prefix)) found.push(`${dir}/${name}`);
      else if (depth > 0) walk(`${dir}/${name}`, depth - 1);
    }
  };
  for (const point of points) walk(point, 3);
  return found;
}

/** Mount points at or below `dir`. */
export function mountsBelow(dir: string): string[] {
  return (read('/proc/self/mountinfo') ?? '')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}
