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
export function useRunEvents(runId: string, onState: () => void): RunEvents {
  const [view, setView] = useState<RunEvents>({ events: [], ended: false, error: null });
  const onStateRef = useRef(onState);
  onStateRef.current = onState;
  useEffect(() => {
    const controller = new AbortController();
    const buffer: RunEventMessage[] = [];
    let frame = 0;
    const flush = (): void => {
      frame = 0;
      const batch = buffer.splice(0);
      if (batch.length > 0) setView((v) => ({ ...v, events: [...v.events, ...batch] }));
    };
    setView({ events: [], ended: false, error: null });
    void client
      .followRun(runId, {
        signal: controller.signal,
        reconnect: true,
        onEvent: (event) => {
          buffer.push(event);
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
    };
  }, [runId]);
  return view;
}
