import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import type { RunItem } from '../../../src/api/runs.js';
import { RUN_STATES } from '../../../src/core/run-state.js';
import { ARTIFACT_TYPES, EXECUTION_LOCATIONS, RUN_SORT_FIELDS, RUN_SOURCES } from '../../../src/core/run.js';
import { client } from '../api.js';
import { useSession } from '../session.js';
import { Page, QueryError, StateBadge, TimeAgo } from '../ui/components.js';
import { duration, isTerminal, safeUrl, shortId, stateLabel } from '../ui/format.js';

const PAGE_SIZE = 100;
const ROW_HEIGHT = 44;
const LIVE_POLL_MS = 3000;

/** Every filter of `GET /agent/runs`, as the page's query string (so a filtered list is a link). */
const FILTERS = [
  'q',
  'state',
  'environment_id',
  'source',
  'creator',
  'model_id',
  'name',
  'schedule_id',
  'artifact_type',
  'execution_location',
  'skill',
  'skill_spec',
  'ancestor_run_id',
  'created_after',
  'created_before',
  'updated_after',
  'sort_by',
  'sort_order',
] as const;

function listQuery(search: URLSearchParams, extra: Record<string, string> = {}): URLSearchParams {
  const query = new URLSearchParams();
  for (const name of FILTERS) for (const value of search.getAll(name)) if (value) query.append(name, value);
  for (const [k, v] of Object.entries(extra)) query.set(k, v);
  return query;
}

/**
 * A run's duration: its executions' working time, each from its start to its end (or now,
 * while it runs); the time a run waited between executions (for a follow-up) does not count.
 */
export function runDuration(run: RunItem, now = Date.now()): number | null {
  const worked = run.executions.filter((e) => e.started_at !== null);
  if (worked.length > 0) {
    return worked.reduce((sum, e) => sum + ((e.ended_at ? Date.parse(e.ended_at) : now) - Date.parse(e.started_at ?? '')), 0);
  }
  const start = run.started_at ? Date.parse(run.started_at) : null;
  if (start === null) return null;
  const end = isTerminal(run.state) ? Date.parse(run.updated_at) : now;
  return end - start;
}

/**
 * The runs list: paged with the API's cursors and virtualised (only the rows
 * on screen are in the DOM), so 10,000 runs scroll as smoothly as 10. Live:
 * every few seconds it asks for the runs updated since its last look
 * (`updated_after`) and lays them over the pages it holds.
 */
export function RunsPage(): ReactNode {
  const searchText = useSearch();
  const search = useMemo(() => new URLSearchParams(searchText), [searchText]);
  const [, navigate] = useLocation();
  const key = listQuery(search).toString();
  const pages = useInfiniteQuery({
    queryKey: ['runs', key],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) => client.listRuns(listQuery(search, { limit: String(PAGE_SIZE), ...(pageParam ? { cursor: pageParam } : {}) })),
    getNextPageParam: (last) => (last.page_info.has_next_page ? last.page_info.next_cursor : undefined),
    staleTime: Infinity,
  });
  // When this list's first page arrived: later pages (fetched as it scrolls) do not move it, so live changes seen since stay laid over.
  const [firstLoad, setFirstLoad] = useState<{ key: string; at: number }>({ key, at: 0 });
  if (pages.isSuccess && (firstLoad.key !== key || firstLoad.at === 0)) setFirstLoad({ key, at: pages.dataUpdatedAt });
  const loadedAt = firstLoad.key === key ? firstLoad.at : 0;
  const live = useLiveRuns(search, key, loadedAt);
  const rows = useMemo(() => {
    const loaded = pages.data?.pages.flatMap((p) => p.runs) ?? [];
    const seen = new Set(loaded.map((r) => r.run_id));
    // New runs on top, only those the state filter asks for (the live look does not filter by state).
    const states = search.getAll('state');
    const fresh = [...live.values()].filter((r) => !seen.has(r.run_id) && Date.parse(r.created_at) > loadedAt - 1000 && (states.length === 0 || states.includes(r.state)));
    fresh.sort((a, b) => b.created_at.localeCompare(a.created_at));
    return [...fresh, ...loaded.map((r) => live.get(r.run_id) ?? r)];
  }, [pages.data, loadedAt, live, search]);

  // Each filter is a step in the history (Back undoes it); typing a search only replaces the step.
  const setFilter = (name: string, value: string): void => {
    const next = new URLSearchParams(search);
    if (value) next.set(name, value);
    else next.delete(name);
    navigate(`/runs${next.size ? `?${next.toString()}` : ''}`, { replace: name === 'q' });
  };
  const filtered = FILTERS.some((f) => search.has(f));

  return (
    <Page
      title="Runs"
      actions={
        <Link href="/runs/new" className="button primary">
          New run
        </Link>
      }
    >
      <RunFilters search={search} setFilter={setFilter} />
      {pages.isError ? <QueryError error={pages.error} /> : null}
      <RunTable
        filtered={filtered}
        rows={rows}
        loading={pages.isPending}
        hasMore={pages.hasNextPage}
        loadMore={() => {
          if (!pages.isFetchingNextPage) void pages.fetchNextPage();
        }}
      />
    </Page>
  );
}

/** The runs changed since the list was loaded, by id (polling `updated_after`). */
function useLiveRuns(search: URLSearchParams, key: string, loadedAt: number): Map<string, RunItem> {
  const [changed, setChanged] = useState(() => new Map<string, RunItem>());
  const since = useRef<string | null>(null);
  useEffect(() => {
    setChanged(new Map());
    since.current = loadedAt ? new Date(loadedAt - 2000).toISOString() : null;
  }, [key, loadedAt]);
  useQuery({
    queryKey: ['runs-live', key, loadedAt],
    enabled: loadedAt > 0,
    refetchInterval: LIVE_POLL_MS,
    refetchIntervalInBackground: false,
    queryFn: async () => {
      const after = since.current;
      // Without the filters a change can move a run out of (state, artifact): a run that finished must not stay "in-progress" here.
      const query = listQuery(search, { limit: '500', sort_by: 'updated_at', sort_order: 'desc', ...(after ? { updated_after: after } : {}) });
      query.delete('state');
      query.delete('artifact_type');
      const page = await client.listRuns(query);
      if (page.runs.length > 0) {
        // The next look starts a little before the newest change seen (the server's clock, not ours).
        const newest = page.runs.reduce((m, r) => (r.updated_at > m ? r.updated_at : m), page.runs[0]?.updated_at ?? '');
        since.current = new Date(Date.parse(newest) - 1000).toISOString();
        setChanged((prev) => {
          const next = new Map(prev);
          for (const run of page.runs) next.set(run.run_id, run);
          return next;
        });
      }
      return page.runs.length;
    },
  });
  return changed;
}

function RunFilters({ search, setFilter }: { search: URLSearchParams; setFilter: (name: string, value: string) => void }): ReactNode {
  const { session } = useSession();
  const environments = useQuery({ queryKey: ['environments'], queryFn: () => client.listEnvironments() });
  const [q, setQ] = useState(search.get('q') ?? '');
  useEffect(() => {
    const timer = window.setTimeout(() => {
      if (q !== (search.get('q') ?? '')) setFilter('q', q.trim());
    }, 300);
    return () => window.clearTimeout(timer);
  });
  const select = (name: string, label: string, options: readonly (string | [string, string])[]): ReactNode => (
    <label className="filter">
      <span>{label}</span>
      <select name={name} value={search.get(name) ?? ''} onChange={(e) => setFilter(name, e.target.value)}>
        <option value="">Any</option>
        {options.map((o) => {
          const [value, text] = typeof o === 'string' ? [o, o] : o;
          return (
            <option key={value} value={value}>
              {text}
            </option>
          );
        })}
      </select>
    </label>
  );
  const text = (name: string, label: string, placeholder = ''): ReactNode => (
    <label className="filter">
      <span>{label}</span>
      <input
        name={name}
        defaultValue={search.get(name) ?? ''}
        placeholder={placeholder}
        onBlur={(e) => setFilter(name, e.target.value.trim())}
        onKeyDown={(e) => e.key === 'Enter' && setFilter(name, e.currentTarget.value.trim())}
      />
    </label>
  );
  const date = (name: string, label: string): ReactNode => (
    <label className="filter">
      <span>{label}</span>
      <input
        type="datetime-local"
        name={name}
        value={search.get(name) ? toLocalInput(search.get(name) ?? '') : ''}
        onChange={(e) => setFilter(name, e.target.value ? new Date(e.target.value).toISOString() : '')}
      />
    </label>
  );
  return (
    <form className="filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
      <label className="filter search">
        <span>Search</span>
        <input type="search" name="q" value={q} placeholder="Title or prompt" onChange={(e) => setQ(e.target.value)} />
      </label>
      {select(
        'state',
        'State',
        RUN_STATES.map((s) => [s, stateLabel(s)]),
      )}
      {select(
        'environment_id',
        'Environment',
        (environments.data?.environments ?? []).map((e) => [e.uid, e.config.name]),
      )}
      {select('source', 'Source', RUN_SOURCES)}
      {select('creator', 'Creator', [[session.user.uid, 'Me']])}
      {text('model_id', 'Model', 'e.g. auto')}
      <details className="more-filters">
        <summary>More filters</summary>
        <div className="filters">
          {text('name', 'Agent name')}
          {text('creator', 'Creator uid')}
          {text('schedule_id', 'Schedule id')}
          {select('artifact_type', 'Artifact', ARTIFACT_TYPES)}
          {select('execution_location', 'Location', EXECUTION_LOCATIONS)}
          {text('skill', 'Skill')}
          {text('skill_spec', 'Skill spec')}
          {text('ancestor_run_id', 'Ancestor run')}
          {date('created_after', 'Created after')}
          {date('created_before', 'Created before')}
          {date('updated_after', 'Updated after')}
          {select('sort_by', 'Sort by', RUN_SORT_FIELDS)}
          {select('sort_order', 'Order', ['desc', 'asc'])}
        </div>
      </details>
    </form>
  );
}

function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const COLUMNS = ['State', 'Title', 'Source', 'Environment', 'Harness', 'Model', 'Creator', 'Age', 'Duration', 'Pull request'] as const;

function RunTable({ rows, loading, hasMore, loadMore, filtered }: { rows: RunItem[]; loading: boolean; hasMore: boolean; loadMore: () => void; filtered: boolean }): ReactNode {
  const scroller = useRef<HTMLDivElement>(null);
  const { session } = useSession();
  const environments = useQuery({ queryKey: ['environments'], queryFn: () => client.listEnvironments() });
  const envName = useMemo(() => new Map((environments.data?.environments ?? []).map((e) => [e.uid, e.config.name])), [environments.data]);
  const virtualizer = useVirtualizer({ count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => ROW_HEIGHT, overscan: 12 });
  const items = virtualizer.getVirtualItems();
  const last = items.at(-1);
  useEffect(() => {
    if (hasMore && last && last.index >= rows.length - 30) loadMore();
  }, [hasMore, last, rows.length, loadMore]);
  if (loading) return <p role="status">Loading runs…</p>;
  if (rows.length === 0) {
    return filtered ? (
      <p className="empty">No runs match these filters.</p>
    ) : (
      <p className="empty">
        No runs yet. Dispatch one with New run, or <code>oz agent run-cloud</code>.
      </p>
    );
  }
  return (
    <div className="runs-table" role="table" aria-label="Runs" aria-rowcount={hasMore ? -1 : rows.length + 1}>
      <div className="runs-row runs-head" role="row" aria-rowindex={1}>
        {COLUMNS.map((c) => (
          <span key={c} role="columnheader">
            {c}
          </span>
        ))}
      </div>
      <div ref={scroller} className="runs-scroll" tabIndex={0} aria-label="Runs, scrollable">
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((item) => {
            const run = rows[item.index];
            if (!run) return null;
            const pr = run.artifacts?.find((a) => a.artifact_type === 'PULL_REQUEST');
            const prUrl = pr && typeof pr.data.url === 'string' ? safeUrl(pr.data.url) || null : null;
            const took = runDuration(run);
            const environmentId = run.agent_config?.environment_id;
            return (
              <div
                key={run.run_id}
                className="runs-row"
                role="row"
                aria-rowindex={item.index + 2}
                style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
                data-run-id={run.run_id}
              >
                <span role="cell">
                  <StateBadge state={run.state} />
                </span>
                <span role="cell" className="title">
                  <Link href={`/runs/${encodeURIComponent(run.run_id)}`}>{run.title || shortId(run.run_id)}</Link>
                </span>
                <span role="cell">{run.source ?? '—'}</span>
                <span role="cell">{environmentId ? (envName.get(environmentId) ?? shortId(environmentId)) : '—'}</span>
                <span role="cell">{run.agent_config.harness.type}</span>
                <span role="cell">{run.agent_config?.model_id ?? '—'}</span>
                <span role="cell">{run.creator?.uid === session.user.uid ? 'you' : run.creator ? shortId(run.creator.uid) : '—'}</span>
                <span role="cell">
                  <TimeAgo iso={run.created_at} />
                </span>
                <span role="cell">{took === null ? '—' : duration(took)}</span>
                <span role="cell">
                  {prUrl ? (
                    <a href={prUrl} target="_blank" rel="noreferrer noopener">
                      PR
                    </a>
                  ) : (
                    '—'
                  )}
                </span>
              </div>
            );
          })}
        </div>
      </div>
      {hasMore ? <p className="muted">Scroll for more…</p> : null}
    </div>
  );
}
