import type { Harness, HarnessInput, HarnessResult } from '../harness.js';
import { workingDir } from '../working-dir.js';

/**
 * The `command` harness: any executable. `config.harness.command` runs as a
 * shell command line with the prompt in `OZ_PROMPT` and on stdin; with no
 * command, the prompt itself is the shell script. It starts in the run's
 * working directory (src/agent/working-dir.ts). Exit 0 is success. Each
 * follow-up is the next script (in a later execution, the first one).
 */
export class CommandHarness implements Harness {
  readonly type = 'command' as const;
  readonly modelProxy = null;

  async run(input: HarnessInput): Promise<HarnessResult> {
    // The prompt, then each follow-up that arrived while the one before ran, as the next script (in order).
    let result = await this.once(input, input.prompt, 0);
    for (let n = 1; result.ok && !input.signal.aborted; n++) {
      const more = input.followups?.take() ?? [];
      if (more.length === 0) break;
      for (const text of more) {
        result = await this.once(input, text, n);
        if (!result.ok || input.signal.aborted) break;
      }
    }
    return result;
  }

  private async once(input: HarnessInput, prompt: string, n: number): Promise<HarnessResult> {
    const env = { ...input.env, OZ_PROMPT: prompt, OZ_HARNESS: 'command' };
    let argv: string[];
    if (input.harness.command) {
      argv = ['/bin/sh', '-c', input.harness.command];
    } else {
      // A file, not `sh -c`: an argument is capped at 128 KiB, a prompt is not.
      const script = await input.sandbox.writeFile(n === 0 ? '.oz/prompt.sh' : `.oz/followup-${n}.sh`, prompt);
      argv = [input.shell ?? '/bin/bash', script];
    }
    const result = await input.sandbox.exec(argv, {
      env,
      cwd: workingDir(input.repoDirs, input.imageWorkingDir),
      stdin: input.harness.command ? prompt : '',
      onOutput: (stream, chunk) => input.sink.output(stream, chunk),
    });
    const ok = result.exitCode === 0;
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    return { ok, summary: ok ? 'The command exited with code 0.' : `The command ${how}.` };
  }
}
