import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';

/**
 * A test host of the test's own: a network namespace joined to the host's by
 * a veth pair on a private /30 (10.213.x.y), running a TCP listener (it
 * answers "hello from the test host") and a UDP echo. The only real internal
 * destination the network tests send to; stopped by PID, its namespace
 * deleted (the veth pair goes with it).
 */
export interface TestHost {
  /** The test host's address (private). */
  address: string;
  tcpPort: number;
  udpPort: number;
  stop(): Promise<void>;
}

const SERVE = `
const net = require('node:net'), dgram = require('node:dgram');
const [address, tcp, udp] = process.argv.slice(1);
const server = net.createServer((s) => s.end('hello from the test host\\n'));
const socket = dgram.createSocket('udp4');
socket.on('message', (m, from) => socket.send('echo ' + m, from.port, from.address));
server.listen(Number(tcp), address, () => socket.bind(Number(udp), address, () => console.log('ready')));
`;

export function netnsMissing(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'ip (iproute2) is not installed';
  }
}

export async function startTestHost(): Promise<TestHost> {
  const id = randomInt(1, 0xffff).toString(16);
  const ns = `oz-th-${id}`;
  const outside = `ozth${id}a`;
  const inside = `ozth${id}b`;
  const block = randomInt(0, 16384) * 4;
  const at = (n: number): string => `10.213.${block >> 8}.${(block & 0xff) + n}`;
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  let child: ChildProcess | null = null;
  const stop = async (): Promise<void> => {
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    try {
      ip('netns', 'del', ns);
    } catch {
      // Not made.
    }
    try {
      ip('link', 'del', outside);
    } catch {
      // Gone with the namespace.
    }
  };
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', ns);
    ip('addr', 'add', `${at(1)}/30`, 'dev', outside);
    ip('link', 'set', outside, 'up');
    ip('-n', ns, 'addr', 'add', `${at(2)}/30`, 'dev', inside);
    ip('-n', ns, 'link', 'set', inside, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', at(1));
    const tcpPort = 18_000 + randomInt(1000);
    const udpPort = tcpPort + 1;
    child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVE, at(2), String(tcpPort), String(udpPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the test host did not start')), 10_000);
      child?.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child?.once('exit', (code) => reject(new Error(`the test host exited (${code})`)));
    });
    return { address: at(2), tcpPort, udpPort, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
