import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** docs/api.md: the conformance tables are part of the reference users read, so the tests read them there. */
export const API_DOC = fileURLToPath(new URL('../../docs/api.md', import.meta.url));

export type Status = 'implemented' | 'partial' | 'feature_not_available';

export interface OperationRow {
  method: string;
  /** Relative to /api/v1, as the spec writes it (`/agent/runs/{runId}`). */
  path: string;
  operationId: string;
  status: Status;
  /** For `partial`: what is missing, as the table says it. */
  missing?: string;
}

export interface CommandRow {
  /** `oz run list`, without the table's "(ours)" marker. */
  command: string;
  ours: boolean;
  aliases: string[];
  status: Status;
  missing?: string;
}

/** The lines of one `###` subsection of the "Conformance with Oz" section. */
function subsection(markdown: string, title: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line === '## Conformance with Oz');
  if (start < 0) throw new Error('docs/api.md has no "## Conformance with Oz" section');
  const end = lines.findIndex((line, i) => i > start && /^## /.test(line));
  const section = lines.slice(start + 1, end < 0 ? undefined : end);
  const from = section.findIndex((line) => line === `### ${title}`);
  if (from < 0) throw new Error(`"Conformance with Oz" has no "### ${title}" subsection`);
  const to = section.findIndex((line, i) => i > from && /^### /.test(line));
  return section.slice(from + 1, to < 0 ? undefined : to);
}

/** The body rows of the first table in `lines`, as trimmed cells (header and separator dropped). */
function tableRows(lines: string[]): string[][] {
  const table = lines.filter((line) => line.startsWith('|'));
  // A cell may hold `a|b` only inside backticks; none of ours do, so a plain split is enough.
  return table.slice(2).map((line) =>
    line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split('|')
      .map((cell) => cell.trim()),
  );
}

const code = (cell: string): string => {
  const m = /^`([^`]+)`(.*)$/.exec(cell);
  if (!m?.[1]) throw new Error(`expected a \`code\` cell, got ${JSON.stringify(cell)}`);
  return m[1];
};

function status(cell: string): { status: Status; missing?: string } {
  if (cell === 'implemented' || cell === 'feature_not_available') return { status: cell };
  const m = /^partial \((.+)\)$/.exec(cell);
  if (m?.[1]) return { status: 'partial', missing: m[1] };
  throw new Error(`a status is implemented, partial (what is missing) or feature_not_available; got ${JSON.stringify(cell)}`);
}

export function readConformance(markdown = readFileSync(API_DOC, 'utf8')): { operations: OperationRow[]; commands: CommandRow[] } {
  const operations = tableRows(subsection(markdown, 'Operations')).map(([method = '', path = '', operationId = '', state = '']) => ({
    method: code(method),
    path: code(path),
    operationId: code(operationId),
    ...status(state),
  }));
  const commands = tableRows(subsection(markdown, 'Commands')).map(([command = '', aliases = '', state = '']) => ({
    command: code(command),
    ours: /\(ours\)\s*$/.test(command),
    aliases: [...aliases.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ''),
    ...status(state),
  }));
  return { operations, commands };
}
