import { MIB } from '../../core/units.js';
import type { HostGitLimits } from '../git-limits.js';

/**
 * The limits skopeo and umoci run under, of the same kind as host git's
 * (`git-limits.ts`): they parse what a registry sends (manifests, configs,
 * compressed layers) as root on the host, outside every sandbox. rlimits per
 * process (address space, CPU seconds, the largest file written: one layer
 * blob or one file of a layer), and a cgroup for all of them together where
 * the worker can make one. Go reserves address space generously, hence more
 * than git's default; its threads count against `pids`.
 */
export type ImageToolLimits = HostGitLimits;

export const DEFAULT_IMAGE_TOOL_LIMITS: ImageToolLimits = {
  memoryBytes: 4096 * MIB,
  maxFileBytes: 16 * 1024 * MIB,
  cpuSeconds: 60 * 60,
  pids: 512,
};

/** The wall-clock limit of one skopeo or umoci: a large image on a slow link still fits. */
export const DEFAULT_IMAGE_TOOL_TIMEOUT_MS = 30 * 60 * 1000;
