/**
 * The four output formats of the `oz` CLI:
 * - pretty: for people — aligned tables, labelled fields, short sentences;
 * - json: the API's JSON, indented;
 * - ndjson: one JSON value per line (a list prints one item per line);
 * - text: plain tab-separated values without headers or decoration, for scripts.
 *
 * `--jq FILTER` (as Oz's CLI) forces json and passes each JSON value through
 * the filter instead of printing it (src/cli/jq.ts).
 */
import { applyJq } from './jq.js';
import { safeText, safeWriter } from './safe-text.js';

export const OUTPUT_FORMATS = ['pretty', 'json', 'ndjson', 'text'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Column<T> {
  header: string;
  value: (item: T) => string;
}

export type Writer = (text: string) => void;

/** A table cell or a `text` value: one line, with controls escaped first so the widths are the printed ones. */
function cell(value: string): string {
  return safeText(value.replace(/[\t\n\r]+/g, ' '));
}

/**
 * Everything a command prints goes through here, and through `safeText`
 * (src/cli/safe-text.ts) on its way out: what came from a run never reaches
 * the terminal as control sequences, in any format.
 */
export class Output {
  private readonly write: Writer;
  /** The jq filtering is asynchronous; values go through it in order, and `flush` waits for the last. */
  private queue: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | null = null;
  readonly format: OutputFormat;

  constructor(
    format: OutputFormat,
    write: Writer,
    private readonly jq: string | null = null,
  ) {
    this.format = jq === null ? format : 'json';
    this.write = safeWriter(write);
  }

  line(text: string): void {
    this.write(`${text}\n`);
  }

  /** One JSON value: indented (json) or on one line (ndjson, a live event), or through `--jq`. */
  json(value: unknown, oneLine = this.format === 'ndjson'): void {
    const filter = this.jq;
    if (filter === null) return this.line(oneLine ? JSON.stringify(value) : JSON.stringify(value, null, 2));
    this.queue = this.queue.then(async () => {
      if (this.failure) return;
      try {
        const text = await applyJq(value, filter);
        if (text.length > 0) this.write(text);
      } catch (error) {
        // Kept for flush(): a rejection nobody awaits yet would crash the process.
        this.failure = { error };
      }
    });
  }

  /** Wait until every value went through `--jq`; throws the filter's error (src/cli/jq.ts). */
  async flush(): Promise<void> {
    await this.queue;
    if (this.failure) throw this.failure.error;
  }

  /** A list of items: a table (pretty), an array (json), lines (ndjson / text). */
  list<T>(items: readonly T[], columns: readonly Column<T>[], json: unknown, jsonItems: readonly unknown[], empty = 'Nothing to show.'): void {
    switch (this.format) {
      case 'json':
        return this.json(json);
      case 'ndjson':
        for (const item of jsonItems) this.json(item);
        return;
      case 'text':
        for (const item of items) this.line(columns.map((c) => cell(c.value(item))).join('\t'));
        return;
      case 'pretty': {
        if (items.length === 0) return this.line(empty);
        const rows = items.map((item) => columns.map((c) => cell(c.value(item))));
        const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
        const fmt = (cells: string[]) => cells.map((v, i) => (i === cells.length - 1 ? v : v.padEnd(widths[i] ?? 0))).join('  ');
        this.line(fmt(columns.map((c) => c.header)));
        for (const row of rows) this.line(fmt(row));
      }
    }
  }

  /** One object: labelled fields (pretty), `key\tvalue` lines (text), JSON (json / ndjson). */
  object(fields: readonly [string, string][], json: unknown): void {
    switch (this.format) {
      case 'json':
      case 'ndjson':
        return this.json(json);
      case 'text':
        for (const [key, value] of fields) this.line(`${key}\t${cell(value)}`);
        return;
      case 'pretty': {
        const width = Math.max(0, ...fields.map(([k]) => k.length));
        for (const [key, value] of fields) this.line(`${`${key}:`.padEnd(width + 1)} ${value}`);
      }
    }
  }

  /** A result sentence in pretty mode; the JSON in json/ndjson; `text` for scripts. */
  result(pretty: string, json: unknown, text: string): void {
    if (this.format === 'pretty') return this.line(pretty);
    if (this.format === 'text') return this.line(text);
    this.json(json);
  }
}
