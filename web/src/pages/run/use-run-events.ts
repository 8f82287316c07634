import { useEffect, useRef, useState } from 'react';
import type { RunEventMessage } from '../../../../src/api/run-events.js';
import { client, errorMessage } from '../../api.js';

export interface RunEvents {
  events: readonly RunEventMessage[];
  /** The stream's end (the run is terminal) was seen. */
  ended: boolean;
  error: string | null;
}

/**
 * The run's events, live, over the SSE endpoint. A dropped connection
 * resumes after the last event seen (Last-Event-ID), so nothing is lost or
 * shown twice. Renders are batched to one per animation frame, so a chatty
 * run costs the page a frame, not an update per line.
 */
export function useRunEvents(runId: string, execution: number | null, onState: () => void): RunEvents {
  const [view, setView] = useState<RunEvents>({ events: [], ended: false, error: null });
  const onStateRef = useRef(onState);
  onStateRef.current = onState;
  // The last event shown: a stream started again (the run's next execution) goes on after it.
  const lastSeq = useRef<{ runId: string; seq: number }>({ runId, seq: 0 });
  useEffect(() => {
    // Started once the run is read, and again for each new execution (a follow-up to an ended run: its stream had ended).
    if (execution === null) return;
    const controller = new AbortController();
    const buffer: RunEventMessage[] = [];
    let frame = 0;
    const flush = (): void => {
      frame = 0;
      const batch = buffer.splice(0);
      if (batch.length > 0) setView((v) => ({ ...v, events: [...v.events, ...batch] }));
    };
    if (lastSeq.current.runId !== runId) {
      lastSeq.current = { runId, seq: 0 };
      setView({ events: [], ended: false, error: null });
    } else setView((v) => ({ ...v, ended: false, error: null }));
    void client
      .followRun(runId, {
        after: lastSeq.current.seq,
        signal: controller.signal,
        reconnect: true,
        onEvent: (event) => {
          buffer.push(event);
          lastSeq.current.seq = event.seq;
          if (event.type === 'state') onStateRef.current();
          if (!frame) frame = window.requestAnimationFrame(flush);
        },
      })
      .then((state) => {
        if (controller.signal.aborted) return;
        flush();
        if (state !== null) {
          setView((v) => ({ ...v, ended: true }));
          onStateRef.current();
        }
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setView((v) => ({ ...v, error: errorMessage(error) }));
      });
    return () => {
      controller.abort();
      if (frame) window.cancelAnimationFrame(frame);
      flush();
    };
  }, [runId, execution]);
  return view;
}
