import { openFromSpec, type StoreSpec } from './store-factories.js';

export interface StoredEvent {
  type: string;
  data: Record<string, unknown>;
}

/** A run's stored events, and what its harness printed (the `harness` phase's output, joined). */
export async function runEvents(storeSpec: StoreSpec, runId: string): Promise<{ events: StoredEvent[]; output: string }> {
  const store = await openFromSpec(storeSpec);
  try {
    const events = (await store.listRunEvents(runId, 0, 10_000)) as StoredEvent[];
    const output = events
      .filter((e) => e.type === 'output' && e.data.phase === 'harness')
      .map((e) => String(e.data.text))
      .join('');
    return { events, output };
  } finally {
    await store.close();
  }
}
