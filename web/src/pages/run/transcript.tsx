import { memo, type ReactNode } from 'react';
import Markdown from 'react-markdown';
import remarkGfm from 'remark-gfm';
import type { RunEventMessage } from '../../../../src/api/run-events.js';
import { safeUrl, stateLabel } from '../../ui/format.js';

type Entry =
  | { kind: 'message'; key: number; role: string; text: string }
  | { kind: 'tool'; key: number; name: string; input: unknown; output: string | null; isError: boolean }
  | { kind: 'log'; key: number; phase: string; text: string }
  | { kind: 'setup'; key: number; command: string; status: string; exitCode: unknown }
  | { kind: 'notice'; key: number; level: string; message: string }
  | { kind: 'state'; key: number; from: string | null; to: string; message: string | null }
  | { kind: 'artifact'; key: number; data: Record<string, unknown> };

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

/** Events → what a person reads: output lines of one phase merged, each tool call with its result. */
export function entriesOf(events: readonly RunEventMessage[]): Entry[] {
  const entries: Entry[] = [];
  const tools = new Map<string, Extract<Entry, { kind: 'tool' }>>();
  for (const e of events) {
    const d = e.data;
    const last = entries.at(-1);
    switch (e.type) {
      case 'output': {
        const phase = str(d.phase) || 'harness';
        if (last?.kind === 'log' && last.phase === phase) last.text += str(d.text);
        else entries.push({ kind: 'log', key: e.seq, phase, text: str(d.text) });
        break;
      }
      case 'message': {
        const role = str(d.role) || 'assistant';
        // A follow-up's message carries its number (src/store/followup-repository.ts).
        const followUp = role === 'user' && d.followup !== undefined;
        entries.push({ kind: 'message', key: e.seq, role: followUp ? 'follow-up' : role, text: str(d.text) });
        break;
      }
      case 'tool_call': {
        const entry = { kind: 'tool' as const, key: e.seq, name: str(d.name) || 'tool', input: d.input, output: null, isError: false };
        tools.set(str(d.id), entry);
        entries.push(entry);
        break;
      }
      case 'tool_result': {
        const call = tools.get(str(d.id));
        if (call) {
          call.output = str(d.output);
          call.isError = d.is_error === true;
        } else entries.push({ kind: 'tool', key: e.seq, name: str(d.name) || 'tool', input: undefined, output: str(d.output), isError: d.is_error === true });
        break;
      }
      case 'setup':
        entries.push({ kind: 'setup', key: e.seq, command: str(d.command), status: str(d.status), exitCode: d.exit_code });
        break;
      case 'notice':
        entries.push({ kind: 'notice', key: e.seq, level: str(d.level) || 'info', message: str(d.message) });
        break;
      case 'state': {
        const sm = d.status_message;
        const message = sm !== null && typeof sm === 'object' && 'message' in sm ? str(sm.message) : null;
        entries.push({ kind: 'state', key: e.seq, from: d.from ? str(d.from) : null, to: str(d.to), message });
        break;
      }
      case 'artifact':
        entries.push({ kind: 'artifact', key: e.seq, data: d });
        break;
      default:
        break;
    }
  }
  return entries;
}

/**
 * The conversation as a transcript. Every string from the run (the prompt,
 * the model's words, tool output, logs) is rendered as text: markdown is
 * turned into elements by react-markdown, which never passes raw HTML
 * through, and links are only http(s).
 */
export function Transcript({ events }: { events: readonly RunEventMessage[] }): ReactNode {
  const entries = entriesOf(events);
  if (entries.length === 0) return <p className="muted">Nothing yet: the run's events appear here as they happen.</p>;
  return (
    <ol className="transcript" aria-label="Conversation">
      {entries.map((entry) => (
        <li key={entry.key} className={`entry entry-${entry.kind}`}>
          <EntryView entry={entry} />
        </li>
      ))}
    </ol>
  );
}

const MarkdownText = memo(function MarkdownText({ text }: { text: string }): ReactNode {
  return (
    <div className="markdown">
      <Markdown
        remarkPlugins={[remarkGfm]}
        skipHtml
        urlTransform={safeUrl}
        components={{
          a: ({ href, children }) => (
            <a href={href} target="_blank" rel="noreferrer noopener">
              {children}
            </a>
          ),
        }}
      >
        {text}
      </Markdown>
    </div>
  );
});

function EntryView({ entry }: { entry: Entry }): ReactNode {
  switch (entry.kind) {
    case 'message':
      return (
        <div className={`message message-${entry.role}`}>
          <span className="who">{entry.role === 'assistant' ? 'Agent' : entry.role === 'user' ? 'Prompt' : entry.role === 'follow-up' ? 'Follow-up' : entry.role}</span>
          {entry.role === 'assistant' ? <MarkdownText text={entry.text} /> : <p className="plain">{entry.text}</p>}
        </div>
      );
    case 'tool':
      return (
        <div className={`tool${entry.isError ? ' tool-error' : ''}`}>
          <span className="who">Tool</span> <code>{entry.name}</code>
          {entry.input !== undefined ? <pre className="tool-input">{typeof entry.input === 'string' ? entry.input : JSON.stringify(entry.input, null, 2)}</pre> : null}
          {entry.output !== null ? (
            <details>
              <summary>
                {entry.isError ? 'Error output' : 'Output'} ({entry.output.split('\n').length} lines)
              </summary>
              <pre className="tool-output">{entry.output}</pre>
            </details>
          ) : (
            <p className="muted">running…</p>
          )}
        </div>
      );
    case 'log':
      return (
        <details className="log" open={entry.phase !== 'setup'}>
          <summary>{entry.phase === 'setup' ? 'Setup log' : 'Output'}</summary>
          <pre>{entry.text}</pre>
        </details>
      );
    case 'setup':
      return (
        <p className={`setup setup-${entry.status}`}>
          Setup {entry.status}: <code>{entry.command}</code>
          {entry.exitCode !== undefined && entry.exitCode !== null ? ` (exit ${str(entry.exitCode)})` : ''}
        </p>
      );
    case 'notice':
      return (
        <p className={`notice notice-${entry.level}`} role="note">
          {entry.message}
        </p>
      );
    case 'state':
      return (
        <p className="state-change">
          {entry.from ? `${stateLabel(entry.from)} → ` : ''}
          <strong>{stateLabel(entry.to)}</strong>
          {entry.message ? `: ${entry.message}` : ''}
        </p>
      );
    case 'artifact': {
      // { artifact_type, data: { url?, branch?, repository?, … } }
      const data = entry.data.data !== null && typeof entry.data.data === 'object' ? (entry.data.data as Record<string, unknown>) : {};
      const url = typeof data.url === 'string' ? safeUrl(data.url) : '';
      const type = str(entry.data.artifact_type) || 'artifact';
      return (
        <p className="artifact">
          {type === 'PULL_REQUEST' ? 'Pull request' : type === 'BRANCH' ? 'Branch' : type}:{' '}
          {url ? (
            <a href={url} target="_blank" rel="noreferrer noopener">
              {url}
            </a>
          ) : (
            <code>{str(data.branch ?? data.name ?? data)}</code>
          )}
          {type === 'BRANCH' && typeof data.repository === 'string' ? (
            <>
              {' '}
              in <code>{data.repository}</code>
            </>
          ) : null}
        </p>
      );
    }
  }
}
