import { useQuery } from '@tanstack/react-query';
import { useMemo, type ReactNode } from 'react';
import { Diff, Hunk, parseDiff, type FileData } from 'react-diff-view';
import 'react-diff-view/style/index.css';
import { client } from '../../api.js';
import { QueryError, TimeAgo } from '../../ui/components.js';
import { bytes } from '../../ui/format.js';

function fileName(file: FileData): string {
  if (file.type === 'delete') return file.oldPath;
  if (file.type === 'rename' && file.oldPath !== file.newPath) return `${file.oldPath} → ${file.newPath}`;
  return file.newPath;
}

/** One repository's patch, parsed and rendered by react-diff-view (every line as text). */
function RepositoryDiff({ patch }: { patch: string }): ReactNode {
  const files = useMemo(() => {
    try {
      return parseDiff(patch, { nearbySequences: 'zip' });
    } catch {
      return null;
    }
  }, [patch]);
  if (!files) return <pre className="raw-diff">{patch}</pre>;
  return (
    <>
      {files.map((file) => (
        <details key={`${file.oldRevision}-${file.newRevision}-${fileName(file)}`} className="diff-file" open>
          <summary>
            <code>{fileName(file)}</code> <span className="muted">{file.type === 'modify' ? '' : file.type}</span>
          </summary>
          {file.hunks.length === 0 ? (
            <p className="muted">No text changes (binary, or mode only).</p>
          ) : (
            <Diff viewType="unified" diffType={file.type} hunks={file.hunks}>
              {(hunks) => hunks.map((hunk) => <Hunk key={hunk.content} hunk={hunk} />)}
            </Diff>
          )}
        </details>
      ))}
    </>
  );
}

/** A repository's short name: the last part of its URL, without `.git`. */
const repoName = (url: string): string =>
  url
    .replace(/\/+$/, '')
    .split(/[/:]/)
    .pop()
    ?.replace(/\.git$/, '') || url;

/** The run's changes (`GET /agent/runs/{id}/diff`): the patch the worker published per repository, and when it was cut. */
export function RunDiff({ runId, version }: { runId: string; version: string }): ReactNode {
  const diff = useQuery({ queryKey: ['run-diff', runId, version], queryFn: () => client.getRunDiff(runId) });
  if (diff.isPending) return <p role="status">Loading the diff…</p>;
  if (diff.isError) return <QueryError error={diff.error} />;
  if (diff.data.diffs.length === 0) return <p className="muted">No changes published (yet).</p>;
  return (
    <div className="diffs">
      {diff.data.diffs.map((d) => (
        <section key={d.repository} className="repository-diff" aria-label={`Changes in ${repoName(d.repository)}`}>
          <h3>
            {repoName(d.repository)} <span className="muted">{d.repository}</span>
          </h3>
          <p className="muted">
            <code>{d.base.slice(0, 10)}</code>..<code>{d.head.slice(0, 10)}</code> by execution {d.execution}, cut <TimeAgo iso={d.created_at} />, {bytes(d.bytes)}
            {d.truncated ? ' — cut at 1 MiB: the branch holds the rest' : ''}
          </p>
          {d.patch ? <RepositoryDiff patch={d.patch} /> : <p className="muted">No changes.</p>}
        </section>
      ))}
    </div>
  );
}
