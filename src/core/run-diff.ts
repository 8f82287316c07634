/**
 * The patch of a run's changes to one repository (docs/results.md "Diffs"):
 * from the commit the run's first execution started on to the commit its
 * last one published, as `git diff` prints it, cut to {@link MAX_DIFF_BYTES}.
 */
export interface RunDiff {
  runId: string;
  repository: string;
  execution: number;
  base: string;
  head: string;
  patch: string;
  /** The whole patch's size in bytes, before any cut. */
  bytes: number;
  truncated: boolean;
  createdAt: number;
}

/** The most of one repository's patch that is kept (bytes of UTF-8). */
export const MAX_DIFF_BYTES = 1024 * 1024;
