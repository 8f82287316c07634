import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OZ_BIN, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';

/**
 * A run's output, notices, summary and title may hold terminal control
 * sequences; the CLI must never pass them to the terminal raw (issue 16
 * item 10), on a pipe or a terminal, in any format.
 */

const ESC = '\u001b';
const BEL = '\u0007';
/** Everything a terminal could act on: C0 controls but \n and \t (\r included), DEL, C1, bidi overrides and isolates. */
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

function rawAt(text: string): string | null {
  const m = RAW.exec(text);
  return m ? `U+${(m[0].codePointAt(0) ?? 0).toString(16).padStart(4, '0')} at ${m.index}: ${JSON.stringify(text.slice(Math.max(0, m.index - 40), m.index + 40))}` : null;
}

/** What the run prints: a clipboard write, a screen clear, a forged line over a real one, a hyperlink, an 8-bit CSI, a bidi override, DEL. */
const SCRIPT = [
  String.raw`printf 'clip \033]52;c;b3duZWQ=\007 end\n'`,
  String.raw`printf '\033[2J\033[Hcleared\n'`,
  String.raw`printf 'working\r[00:00:00] state in-progress → succeeded\n'`,
  String.raw`printf 'link \033]8;;https://evil.test/\033\\click\033]8;;\033\\ end\n'`,
  String.raw`printf 'c1 \302\2332J bidi \342\200\256txt.exe del \177 bell \007\n'`,
  String.raw`oz harness-support notify-user --message "$(printf 'note \033]52;c;eA==\007 \033[31mred')"`,
  String.raw`oz harness-support finish-task --status success --summary "$(printf 'summary \033[2J\rforged \302\233K')"`,
].join('\n');
const TITLE = `title ${ESC}]52;c;eA==${BEL} \u202e end`;

describe('the CLI never prints terminal controls that came from a run', () => {
  let server: OzServerHandle;
  let runId = '';
  let followed = '';
  const oz = (...args: string[]) => runOz(args, server.cliEnv, { timeoutMs: 60_000 });

  beforeAll(async () => {
    server = await startOzServer('sqlite');
    const result = await oz('agent', 'run-cloud', '--harness', 'command', '-p', SCRIPT, '--title', TITLE, '--follow');
    expect(result.code, result.stderr + result.stdout).toBe(0);
    runId = /run ID: (\S+)/.exec(result.stdout)?.[1] ?? '';
    followed = result.stdout;
  }, 90_000);
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it('--follow (pretty) shows every control as an escape, and the forged line stays on the real one', () => {
    expect(runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(rawAt(followed)).toBeNull();
    expect(followed).toContain(String.raw`clip \u001b]52;c;b3duZWQ=\u0007 end`);
    expect(followed).toContain(String.raw`\u001b[2J\u001b[Hcleared`);
    expect(followed).toMatch(/working\\u000d\[00:00:00\] state in-progress → succeeded/);
    expect(followed).toContain(String.raw`link \u001b]8;;https://evil.test/\u001b\click\u001b]8;;\u001b\ end`);
    expect(followed).toContain(String.raw`c1 \u009b2J bidi \u202etxt.exe del \u007f bell \u0007`);
    expect(followed).toContain(String.raw`note \u001b]52;c;eA==\u0007 \u001b[31mred`);
    expect(followed).toContain(String.raw`summary \u001b[2J\u000dforged \u009bK`);
  });

  it('run get, run list, the conversation and errors: pretty and text, on a pipe', async () => {
    for (const format of ['pretty', 'text']) {
      for (const [args, shows] of [
        [['run', 'get', runId], String.raw`title \u001b]52;c;eA==\u0007 \u202e end`],
        [['run', 'list'], String.raw`title \u001b]52;c;eA==\u0007 \u202e end`],
        [['run', 'get', runId, '--conversation'], String.raw`\u001b[2J\u001b[Hcleared`],
        [['run', 'get', runId, '--follow'], String.raw`note \u001b]52;c;eA==\u0007`],
      ] as const) {
        const result = await oz(...args, '--output-format', format);
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
        expect(rawAt(result.stdout), `${args.join(' ')} --output-format ${format}`).toBeNull();
        expect(result.stdout).toContain(shows);
      }
    }
    const got = await oz('run', 'get', runId);
    expect(got.stdout).toMatch(/Status:\s+summary \\u001b\[2J\\u000dforged \\u009bK/);
    // A server message that echoes what it was given.
    const missing = await oz('environment', 'get', `nope${ESC}[2J${ESC}]52;c;eA==${BEL}`);
    expect(missing.code).toBe(1);
    expect(missing.stderr.length).toBeGreaterThan(0);
    expect(rawAt(missing.stderr)).toBeNull();
  });

  it('json and ndjson stay valid and lossless: the escapes decode to the very characters', async () => {
    const json = await oz('run', 'get', runId, '--output-format', 'json');
    expect(rawAt(json.stdout)).toBeNull();
    const run = JSON.parse(json.stdout) as { title: string; status_message: { message: string } };
    expect(run.title).toBe(TITLE);
    expect(run.status_message.message).toBe(`summary ${ESC}[2J\rforged \u009bK`);
    const ndjson = await oz('run', 'get', runId, '--follow', '--output-format', 'ndjson');
    expect(rawAt(ndjson.stdout)).toBeNull();
    const events = ndjson.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; data: { text?: string; message?: string } });
    const output = events
      .filter((e) => e.type === 'output')
      .map((e) => e.data.text)
      .join('');
    expect(output).toContain(`c1 \u009b2J bidi \u202etxt.exe del \u007f bell ${BEL}`);
    expect(output).toContain('working\r[00:00:00]');
    expect(events.some((e) => e.type === 'notice' && e.data.message === `note ${ESC}]52;c;eA==${BEL} ${ESC}[31mred`)).toBe(true);
    const list = await oz('run', 'list', '--output-format', 'json');
    expect(rawAt(list.stdout)).toBeNull();
    expect((JSON.parse(list.stdout) as { runs: { title: string }[] }).runs[0]?.title).toBe(TITLE);
  });

  it('on a terminal (a pseudo-TTY from script(1)) the same', async () => {
    const command = [OZ_BIN, 'run', 'get', runId, '--follow'].map((a) => `'${a}'`).join(' ');
    const transcript = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-qefc', `'${process.execPath}' ${command}; '${process.execPath}' '${OZ_BIN}' run get '${runId}'`, '/dev/null'], {
        env: { ...server.cliEnv, TERM: 'xterm-256color' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`script exited ${code}: ${out}`));
      });
    });
    // The terminal turns each \n into \r\n itself.
    const text = transcript.replace(/\r\n/g, '\n');
    expect(text).toContain(String.raw`clip \u001b]52;c;b3duZWQ=\u0007 end`);
    expect(text).toMatch(/Status:\s+summary/);
    expect(rawAt(text)).toBeNull();
  });
});
