import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** An empty image being made with umoci (no Docker): write into `rootfs`, then `repack`, then `configure`. */
export interface ImageDraft {
  /** The OCI layout reference, `layout:t`. */
  reference: string;
  bundle: string;
  rootfs: string;
  /** Record what was written into `rootfs` as the image's layer. */
  repack(): void;
  /** `umoci config` flags (`--config.env=A=1`, …), if any. */
  configure(flags: readonly string[]): void;
}

/** A new, empty image in `dir` (`layout/`, unpacked rootless in `bundle/`). */
export function draftImage(dir: string): ImageDraft {
  const layout = join(dir, 'layout');
  const bundle = join(dir, 'bundle');
  const reference = `${layout}:t`;
  const umoci = (...args: string[]): void => void execFileSync('umoci', args, { stdio: 'pipe' });
  umoci('init', '--layout', layout);
  umoci('new', '--image', reference);
  umoci('unpack', '--rootless', '--image', reference, bundle);
  return {
    reference,
    bundle,
    rootfs: join(bundle, 'rootfs'),
    repack: () => umoci('repack', '--image', reference, bundle),
    configure: (flags) => {
      if (flags.length > 0) umoci('config', '--image', reference, ...flags);
    },
  };
}
