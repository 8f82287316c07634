import type { ReactNode } from 'react';
import type { RunEventMessage } from '../../../../src/api/run-events.js';
import { duration, isTerminal } from '../../ui/format.js';

export interface Phase {
  name: 'queued' | 'claimed' | 'setup' | 'agent' | 'publish' | 'blocked';
  start: number;
  end: number | null;
  execution: number;
}

const AGENT_EVENTS = new Set(['message', 'tool_call', 'tool_result', 'usage']);

/**
 * The phases of a run, from its events: queued (created until a worker
 * claims it), claimed (the sandbox starting and the repositories cloned),
 * setup (the environment's commands), agent (the harness running) and publish
 * (from the agent's last word to the end: commit, push, pull request). Each
 * execution (a follow-up's too) has its own.
 */
export function phasesOf(createdAt: string, events: readonly RunEventMessage[]): Phase[] {
  const phases: Phase[] = [];
  // In an object, so the closures below and the loop see the same current phase.
  const at: { open: Phase | null; execution: number; lastAgentAt: number | null } = {
    open: { name: 'queued', start: Date.parse(createdAt), end: null, execution: 1 },
    execution: 1,
    lastAgentAt: null,
  };
  const close = (time: number): void => {
    if (at.open) {
      at.open.end = time;
      phases.push(at.open);
    }
    at.open = null;
  };
  const begin = (name: Phase['name'], time: number): void => {
    close(time);
    at.open = { name, start: time, end: null, execution: at.execution };
  };
  for (const event of events) {
    const time = Date.parse(event.at);
    if (event.type === 'state') {
      const to = String(event.data.to);
      if (to === 'QUEUED' && event.data.from && isTerminal(String(event.data.from))) {
        at.execution += 1;
        begin('queued', time);
      } else if (to === 'CLAIMED') begin('claimed', time);
      else if (to === 'INPROGRESS') begin('agent', time);
      else if (to === 'BLOCKED') begin('blocked', time);
      else if (isTerminal(to)) {
        // Only a run that succeeded publishes (commit, push, pull request).
        if (to === 'SUCCEEDED' && at.open?.name === 'agent' && at.lastAgentAt !== null && at.lastAgentAt > at.open.start && at.lastAgentAt < time) begin('publish', at.lastAgentAt);
        close(time);
        at.lastAgentAt = null;
      }
    } else if (event.type === 'setup') {
      if (event.data.status === 'started' && at.open?.name === 'claimed') begin('setup', time);
    } else if (
      (event.type === 'message' && event.data.role === 'assistant') ||
      (AGENT_EVENTS.has(event.type) && event.type !== 'message') ||
      (event.type === 'output' && event.data.phase === 'harness')
    ) {
      at.lastAgentAt = time;
    }
  }
  if (at.open) phases.push(at.open);
  return phases;
}

export function Timeline({ phases, now }: { phases: Phase[]; now: number }): ReactNode {
  if (phases.length === 0) return null;
  const executions = new Set(phases.map((p) => p.execution)).size;
  return (
    <ol className="timeline" aria-label="Phases">
      {phases.map((p, i) => (
        <li key={`${p.execution}-${p.name}-${i}`} className={`phase phase-${p.name}${p.end === null ? ' phase-open' : ''}`}>
          <span className="phase-name">
            {executions > 1 ? `#${p.execution} ` : ''}
            {p.name === 'claimed' ? 'claimed (sandbox, clone)' : p.name}
          </span>
          <span className="phase-time">{duration((p.end ?? now) - p.start)}</span>
          {p.end === null ? <span className="visually-hidden">(in progress)</span> : null}
        </li>
      ))}
    </ol>
  );
}
