import type { HarnessConfig, RunUsage } from '../core/run.js';
import type { Sandbox } from '../sandbox/sandbox-backend.js';

/** What a harness reports while it works: process output and conversation events. */
export interface HarnessSink {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
}

export interface HarnessInput {
  runId: string;
  prompt: string;
  harness: HarnessConfig;
  sandbox: Sandbox;
  /** The run's environment variables (plain env of the environment, run ids). */
  env: Record<string, string>;
  sink: HarnessSink;
}

export interface HarnessResult {
  /** True when the work succeeded (for `command`: exit code 0). */
  ok: boolean;
  summary: string;
  usage?: RunUsage;
}

/** What drives the work in a run (DESIGN.md "Harnesses and models"). */
export interface Harness {
  readonly type: HarnessConfig['type'];
  run(input: HarnessInput): Promise<HarnessResult>;
}
