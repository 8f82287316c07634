import { describe, expect, it } from 'vitest';
import { buildProgram, type WorkerCommandOptions } from '../../src/cli/program.js';
import { loadServerCommand, loadWorkerCommand } from '../../src/core/config.js';
import { answersTo, routedHost, waitingForWorkerMessage, workerNameFromHost } from '../../src/core/worker-pool.js';

describe('worker pools: names, labels, routing', () => {
  it('makes a worker name of any host name', () => {
    expect(workerNameFromHost('Build-Box.example.COM')).toBe('build-box.example.com');
    expect(workerNameFromHost('my host_1')).toBe('my-host_1');
    expect(workerNameFromHost('--lead')).toBe('lead');
    expect(workerNameFromHost('ünï')).toBe('n');
    expect(workerNameFromHost('')).toBe('worker');
    expect(workerNameFromHost('x'.repeat(100))).toHaveLength(63);
  });

  it('routes warp and nothing to any worker, anything else by name or label', () => {
    expect(routedHost(undefined)).toBeNull();
    expect(routedHost('warp')).toBeNull();
    expect(routedHost('gpu')).toBe('gpu');
    const worker = { name: 'box-1', labels: ['gpu', 'arm64'] };
    expect([null, 'box-1', 'gpu', 'arm64', 'box-2', 'tpu'].map((host) => answersTo(worker, host))).toEqual([true, true, true, true, false, false]);
  });

  it('says what a waiting run waits for, and how many workers were seen', () => {
    expect(waitingForWorkerMessage('gpu', 0).message).toBe('Waiting for a worker with name or label "gpu" (no worker was seen in the last 5 minutes).');
    expect(waitingForWorkerMessage('gpu', 1).message).toBe('Waiting for a worker with name or label "gpu" (the one worker seen in the last 5 minutes does not have it).');
    expect(waitingForWorkerMessage('gpu', 2)).toEqual({
      message: 'Waiting for a worker with name or label "gpu" (none of the 2 workers seen in the last 5 minutes has it).',
      reason: 'waiting_for_worker',
    });
  });

  it('reads a worker name and labels from flags or variables, for oz worker and the embedded worker', () => {
    const env = { HOME: '/h', OZ_WORKER_NAME: 'box-1', OZ_WORKER_LABELS: 'gpu, arm64,gpu' };
    expect(loadWorkerCommand({}, env).config).toMatchObject({ workerName: 'box-1', workerLabels: ['gpu', 'arm64'] });
    expect(loadServerCommand({}, env).config).toMatchObject({ workerName: 'box-1', workerLabels: ['gpu', 'arm64'] });
    expect(loadWorkerCommand({ workerName: 'flag-box', workerLabels: 'x' }, env).config).toMatchObject({ workerName: 'flag-box', workerLabels: ['x'] });
    // Empty: the host's name, and no labels.
    expect(loadWorkerCommand({}, { HOME: '/h', OZ_WORKER_NAME: '' }).config.workerLabels).toEqual([]);
    expect(() => loadWorkerCommand({ workerLabels: Array.from({ length: 33 }, (_, i) => `l${i}`).join(',') }, { HOME: '/h' })).toThrow(
      '--label / OZ_WORKER_LABELS: at most 32 labels',
    );
    expect(() => loadWorkerCommand({ workerName: 'warp' }, { HOME: '/h' })).toThrow('--name / OZ_WORKER_NAME: "warp" is reserved');
    expect(() => loadServerCommand({}, { HOME: '/h', OZ_WORKER_NAME: 'No' })).toThrow(/^OZ_WORKER_NAME: must be 1 to 63 characters/);
  });

  it('takes --label several times on oz worker, in order', async () => {
    const seen: WorkerCommandOptions[] = [];
    const noop = async (): Promise<void> => {};
    const program = buildProgram({ runServer: noop, runWorker: async (o) => void seen.push(o), rotateMasterKey: noop, stdout: () => {}, stderr: () => {} });
    await program.parseAsync(['node', 'oz', 'worker', '--server', 'http://127.0.0.1:1', '--name', 'box-1', '--label', 'gpu', '--label', 'arm64,x']);
    expect(seen[0]?.settings).toMatchObject({ workerName: 'box-1', workerLabels: 'gpu,arm64,x' });
  });
});
