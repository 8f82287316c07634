import { fork } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const MODULE = pathToFileURL(join(import.meta.dirname, '..', '..', 'dist', 'sandbox', 'close-inherited-fds.js')).href;

describe.skipIf(process.platform !== 'linux')('closeInheritedFds', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('in a forked worker, closes an inherited descriptor and keeps the IPC channel working', async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-fds-'));
    const child = join(dir, 'child.mjs');
    writeFileSync(
      child,
      `import { closeInheritedFds } from ${JSON.stringify(MODULE)};\n` +
        `const closed = closeInheritedFds();\n` +
        `process.send({ closed, channel: process.channel.fd }, () => process.disconnect());\n`,
    );
    const leaked = openSync(join(dir, 'leaked.txt'), 'w');
    try {
      // fd 3: the IPC channel; fd 40: a descriptor the child must not keep
      // (above the first 16, which Node itself marks close-on-exec at start).
      const stdio: ('ignore' | 'inherit' | 'ipc' | number)[] = ['ignore', 'inherit', 'inherit', 'ipc'];
      while (stdio.length < 40) stdio.push('ignore');
      stdio.push(leaked);
      const proc = fork(child, { stdio });
      const message = await new Promise<{ closed: number[]; channel: number }>((resolve, reject) => {
        proc.once('message', (m) => resolve(m as { closed: number[]; channel: number }));
        proc.once('error', reject);
        proc.once('exit', (code) => reject(new Error(`exited ${code} before answering`)));
      });
      expect(message.channel).toBe(3);
      expect(message.closed).toContain(40);
      expect(message.closed).not.toContain(3);
      await new Promise((resolve) => (proc.exitCode === null ? proc.once('exit', resolve) : resolve(null)));
    } finally {
      closeSync(leaked);
    }
  });
});
