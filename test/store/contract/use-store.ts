import { afterEach, beforeEach } from 'vitest';
import type { StoreFactory, StoreHandle } from '../../support/store-factories.js';

/** A fresh database per test (a new SQLite file / a new PostgreSQL schema). */
export function useStore(factory: StoreFactory): { readonly current: StoreHandle } {
  const box: { current: StoreHandle | null } = { current: null };
  beforeEach(async () => {
    box.current = await factory.open();
  });
  afterEach(async () => {
    const handle = box.current;
    box.current = null;
    await handle?.cleanup();
  });
  return {
    get current(): StoreHandle {
      if (!box.current) throw new Error('store not open (used outside a test?)');
      return box.current;
    },
  };
}
