import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAgentConfigFile } from '../../src/cli/agent-config-file.js';

const dir = mkdtempSync(join(tmpdir(), 'oz-agent-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const RUN = { flag: '--file', wrapper: 'config', bodyFields: ['prompt', 'title', 'team', 'attachments'] } as const;

describe('agent config files', () => {
  it("reads Oz's YAML form: the agent config at the top level, system_prompt as base_prompt, a prompt beside it", async () => {
    const path = file(
      'agent.yaml',
      [
        'name: nightly-deps',
        'model_id: claude-4-6-opus-high',
        'environment_id: env_1',
        'system_prompt: Be terse.',
        'harness: claude',
        'mcp_servers:',
        '  fs:',
        '    command: mcp-fs',
        'prompt: Update the dependencies',
      ].join('\n'),
    );
    expect(await readAgentConfigFile(path, RUN)).toEqual({
      config: {
        name: 'nightly-deps',
        model_id: 'claude-4-6-opus-high',
        environment_id: 'env_1',
        base_prompt: 'Be terse.',
        harness: { type: 'claude' },
        mcp_servers: { fs: { command: 'mcp-fs' } },
      },
      body: { prompt: 'Update the dependencies' },
    });
  });

  it("reads Oz's JSON form and the API's request body form", async () => {
    expect(await readAgentConfigFile(file('a.json', JSON.stringify({ model_id: 'auto', base_prompt: 'x' })), RUN)).toEqual({
      config: { model_id: 'auto', base_prompt: 'x' },
      body: {},
    });
    expect(await readAgentConfigFile(file('b.json', JSON.stringify({ prompt: 'p', title: 't', config: { model_id: 'gpt-5-4-high' } })), RUN)).toEqual({
      config: { model_id: 'gpt-5-4-high' },
      body: { prompt: 'p', title: 't' },
    });
  });

  it('refuses an unknown field, a field given twice, a non-object and broken syntax, naming the flag and the file', async () => {
    await expect(readAgentConfigFile(file('c.yaml', 'modle_id: auto\n'), RUN)).rejects.toThrow(/^--file: c\.yaml has an unknown field "modle_id" \(allowed: name, model_id, /);
    await expect(readAgentConfigFile(file('d.yaml', 'base_prompt: a\nsystem_prompt: b\n'), RUN)).rejects.toThrow(
      '--file: d.yaml sets base_prompt twice (system_prompt is another name for it)',
    );
    await expect(readAgentConfigFile(file('e.yaml', '- a\n- b\n'), RUN)).rejects.toThrow('--file: e.yaml must hold an object');
    await expect(readAgentConfigFile(file('f.json', '{"model_id": '), RUN)).rejects.toThrow(/^--file: f\.json is not valid JSON: /);
    await expect(readAgentConfigFile(join(dir, 'missing.yaml'), RUN)).rejects.toThrow('--file: cannot read');
    await expect(readAgentConfigFile(file('g.json', JSON.stringify({ config: {}, cron: 'x' })), RUN)).rejects.toThrow(
      '--file: g.json has an unknown field "cron" (allowed beside config: prompt, title, team, attachments)',
    );
  });
});
