import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModelCatalog, readModelCatalogFile } from '../../src/core/model-catalog-file.js';

const dir = mkdtempSync(join(tmpdir(), 'oz-catalog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe("the operator's model catalog", () => {
  it('adds entries to the built-in ones, or replaces them; the default may be one of its ids', () => {
    const added = write('add.yaml', 'models:\n  - id: local-coder\n    model: openai-compatible/qwen3-coder\n    display_name: Local coder\n');
    const catalog = buildModelCatalog({ modelCatalog: added, defaultModel: 'local-coder' });
    expect(catalog.resolve('auto').model).toBe('openai-compatible/qwen3-coder');
    expect(catalog.resolve('claude-4-6-opus-high').model).toBe('anthropic/claude-opus-4-6');
    const replaced = write('replace.json', JSON.stringify({ replace_builtin: true, models: [{ id: 'only', model: 'anthropic/x' }] }));
    expect(buildModelCatalog({ modelCatalog: replaced, defaultModel: null }).entries.map((e) => e.id)).toEqual(['only']);
  });

  it('refuses a bad file naming the variable and the entry, and a default the catalog lacks', () => {
    const bad = write('bad.yaml', 'models:\n  - id: Bad Id\n    model: anthropic/x\n');
    expect(() => readModelCatalogFile(bad)).toThrow(/^OZ_MODEL_CATALOG: .*bad\.yaml: models\.0\.id: must be lower-case letters/);
    expect(() => readModelCatalogFile(join(dir, 'missing.yaml'))).toThrow(/^OZ_MODEL_CATALOG: cannot read /);
    expect(() => buildModelCatalog({ modelCatalog: null, defaultModel: 'no-such-model' })).toThrow(
      'OZ_DEFAULT_MODEL: no-such-model is not in the model catalog and not provider/model',
    );
  });
});
