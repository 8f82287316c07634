import { describe, expect, it } from 'vitest';
import { rootsToEvict } from '../../../src/worker/images/image-eviction.js';

describe('which image roots the store evicts', () => {
  const roots = [
    { digest: 'a', bytes: 40, lastUsedMs: 3 },
    { digest: 'b', bytes: 40, lastUsedMs: 1 },
    { digest: 'c', bytes: 40, lastUsedMs: 2 },
  ];

  it('removes nothing while the store fits', () => {
    expect(rootsToEvict(roots, new Set(), 120)).toEqual([]);
  });

  it('removes the least recently used first, until the rest fits', () => {
    expect(rootsToEvict(roots, new Set(), 80)).toEqual(['b']);
    expect(rootsToEvict(roots, new Set(), 40)).toEqual(['b', 'c']);
  });

  it('never removes a root a live run uses, even if the store stays over its limit', () => {
    expect(rootsToEvict(roots, new Set(['b']), 80)).toEqual(['c']);
    expect(rootsToEvict(roots, new Set(['a', 'b', 'c']), 0)).toEqual([]);
  });
});
