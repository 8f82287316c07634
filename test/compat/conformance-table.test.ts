import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { UNAVAILABLE_COMMANDS } from '../../src/cli/unavailable.js';
import { UNIMPLEMENTED_PATHS } from '../../src/server/routes/unimplemented.js';
import { startInProcessServer } from '../support/in-process-app.js';
import { cleanEnv, runOz } from '../support/oz-server-process.js';
import { readConformance, type CommandRow, type OperationRow } from './conformance-table.js';
import { OUR_REFERENCE_COMMANDS, OZ_COMMANDS, REFERENCE_ALIASES, REFERENCE_COMMANDS, SPEC_OPERATIONS } from './oz-reference.js';

const API = '/api/v1';
const { operations, commands } = readConformance();

/** `{runId}`, `{conversation_id}` and `:runId` alike: our route may name a parameter differently from the spec. */
const normalize = (path: string): string => path.replace(/\{[^}]+\}/g, '{}').replace(/:[A-Za-z_]\w*/g, '{}');
const key = (method: string, path: string): string => `${method.toUpperCase()} ${normalize(path)}`;
const rowName = (row: OperationRow): string => `${row.method} ${row.path} (${row.operationId})`;

interface Operation {
  responses?: Record<string, unknown>;
}

describe('the operations table of docs/api.md', () => {
  let server: { url: string; adminKey: string; stop(): Promise<void> };
  /** Operations of the served document, by `METHOD /path` relative to /api/v1. */
  const served = new Map<string, Operation>();
  const unimplemented = new Set(UNIMPLEMENTED_PATHS.map(([method, url]) => key(method, url)));

  beforeAll(async () => {
    server = await startInProcessServer({ defaultModel: 'anthropic/claude-sonnet-4-5' });
    const res = await fetch(`${server.url}${API}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, Operation>> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith(`${API}/`)) continue;
      for (const [method, op] of Object.entries(ops)) served.set(key(method, path.slice(API.length)), op);
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('has one row per operation of the spec, with its operationId, and nothing else', () => {
    const rows = operations.map((row) => [row.method, row.path, row.operationId]);
    expect(rows).toEqual(SPEC_OPERATIONS.map((op) => [...op]));
  });

  it('marks implemented or partial only operations the server serves with a documented 2xx', () => {
    const implemented = operations.filter((row) => row.status !== 'feature_not_available');
    // The parse found rows of each kind: a format change of the table must not make this pass vacuously.
    expect(implemented.length).toBeGreaterThan(10);
    const wrong = implemented
      .filter((row) => {
        const op = served.get(key(row.method, row.path));
        const success = Object.keys(op?.responses ?? {}).some((status) => /^2\d\d$/.test(status));
        return !op || !success || unimplemented.has(key(row.method, row.path));
      })
      .map(rowName);
    expect(wrong).toEqual([]);
  });

  it('marks feature_not_available exactly the operations the server answers that way', async () => {
    const unavailable = operations.filter((row) => row.status === 'feature_not_available');
    expect(unavailable.length).toBeGreaterThan(5);
    const answers: string[] = [];
    for (const row of unavailable) {
      const path = row.path.replace(/\{[^}]+\}/g, randomUUID());
      const res = await fetch(`${server.url}${API}${path}`, {
        method: row.method,
        headers: { authorization: `Bearer ${server.adminKey}`, ...(row.method === 'GET' || row.method === 'DELETE' ? {} : { 'content-type': 'application/json' }) },
        ...(row.method === 'GET' || row.method === 'DELETE' ? {} : { body: '{}' }),
      });
      const text = await res.text();
      let code: unknown = text;
      try {
        code = (JSON.parse(text) as { error_code?: unknown }).error_code;
      } catch {
        // Not a problem document: the status and body below say what it was.
      }
      // The status is the catalog's (src/core/errors.ts); the error_code is what an Oz client branches on.
      if (res.status < 400 || res.status > 499 || code !== 'feature_not_available') answers.push(`${rowName(row)}: ${res.status} ${text.slice(0, 200)}`);
    }
    expect(answers).toEqual([]);
    // And every path the server answers feature_not_available is in the table as such.
    const marked = new Set(unavailable.map((row) => key(row.method, row.path)));
    expect([...unimplemented].filter((route) => !marked.has(route))).toEqual([]);
  });
});

/** The command reached by `path` (`oz run list`, aliases too), or undefined. */
function resolve(program: Command, path: string): Command | undefined {
  let at: Command | undefined = program;
  for (const word of path.split(' ').slice(1)) {
    at = at.commands.find((cmd) => cmd.name() === word || cmd.aliases().includes(word));
    if (!at) return undefined;
  }
  return at;
}

/** Every command path the program registers that has no subcommands of its own (`oz run list`, `oz task list`, `oz whoami`). */
function leaves(cmd: Command, prefix = 'oz'): string[] {
  return cmd.commands.flatMap((sub) => {
    const path = `${prefix} ${sub.name()}`;
    return sub.commands.length === 0 ? [path] : leaves(sub, path);
  });
}

describe('the commands table of docs/api.md', () => {
  const noop = async (): Promise<void> => {};
  const program = buildProgram({ runServer: noop, runWorker: noop, rotateMasterKey: noop, stdout: () => {}, stderr: () => {} });
  /** harness-support parses its own commands (it runs alone in the sandbox); its help lists them. */
  let harnessSupport: string[] = [];
  const isHarnessSupport = (path: string): boolean => path.startsWith('oz harness-support ');
  const exists = (path: string): boolean => (isHarnessSupport(path) ? harnessSupport.includes(path) : resolve(program, path) !== undefined);
  const implemented = commands.filter((row) => row.status !== 'feature_not_available');
  const byPath = new Map<string, CommandRow>(commands.flatMap((row) => [[row.command, row] as const, ...row.aliases.map((alias) => [alias, row] as const)]));

  beforeAll(async () => {
    const help = await runOz(['harness-support', '--help'], cleanEnv());
    expect(help.code, help.stderr).toBe(0);
    const list = help.stdout.split('\nCommands:\n')[1] ?? '';
    harnessSupport = [...list.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => `oz harness-support ${m[1]}`);
    expect(harnessSupport).toContain('oz harness-support finish-task');
  });

  it('has a row for every command of the reference tree', () => {
    expect(REFERENCE_COMMANDS.filter((path) => !commands.some((row) => row.command === path))).toEqual([]);
  });

  it('lists the reference aliases beside every implemented command they cover', () => {
    const missing: string[] = [];
    for (const [alias, of] of REFERENCE_ALIASES) {
      for (const row of commands) {
        if (row.command !== of && !row.command.startsWith(`${of} `)) continue;
        const expected = `${alias}${row.command.slice(of.length)}`;
        if (!row.aliases.includes(expected)) missing.push(`${row.command}: ${expected}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('marks implemented or partial only commands the CLI has, under every alias it lists', () => {
    expect(implemented.length).toBeGreaterThan(30);
    const absent = implemented.flatMap((row) => [row.command, ...row.aliases].filter((path) => !exists(path)));
    expect(absent).toEqual([]);
    // An alias names the same command, not a look-alike registered beside it (oz task list is runCommand('task'): same shape, checked by its description).
    const different = implemented.flatMap((row) =>
      isHarnessSupport(row.command) ? [] : row.aliases.filter((alias) => resolve(program, alias)?.description() !== resolve(program, row.command)?.description()),
    );
    expect(different).toEqual([]);
  });

  it('marks feature_not_available the commands the CLI answers that way, and only those', () => {
    const unavailable = (path: string): boolean => {
      const cmd = resolve(program, path);
      return cmd !== undefined && UNAVAILABLE_COMMANDS.has(cmd);
    };
    // An implemented command is not the placeholder that answers "not available".
    expect(implemented.flatMap((row) => [row.command, ...row.aliases].filter(unavailable))).toEqual([]);
    // A feature_not_available command is either absent or that placeholder (so an Oz script gets one clear line, not "unknown command").
    const rows = commands.filter((row) => row.status === 'feature_not_available');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.flatMap((row) => [row.command, ...row.aliases].filter((path) => resolve(program, path) !== undefined && !unavailable(path)))).toEqual([]);
  });

  it('has a row (or an alias) for every command the CLI registers', () => {
    const registered = [...leaves(program).filter((path) => path !== 'oz harness-support'), ...harnessSupport];
    expect(registered).toEqual(expect.arrayContaining(['oz agent run-cloud', 'oz run list', 'oz task list', 'oz harness-support ping']));
    expect(registered.filter((path) => !byPath.has(path))).toEqual([]);
  });

  it('marks (ours) the commands the reference adds, and no command of Oz', () => {
    // Rows the reference does not list (oz api-key delete, oz integration, harness-support ping) are Oz's: its CLI has more than the reference sums up.
    expect(commands.filter((row) => row.ours && OZ_COMMANDS.includes(row.command)).map((row) => row.command)).toEqual([]);
    expect(commands.filter((row) => !row.ours && OUR_REFERENCE_COMMANDS.includes(row.command)).map((row) => row.command)).toEqual([]);
  });
});
