import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer } from '/work/main/test/support/model-server.ts';

const which = process.argv[2];
const home = mkdtempSync(join(tmpdir(), 'probe-home-'));
const work = mkdtempSync(join(tmpdir(), 'probe-work-'));
writeFileSync(join(work, 'hello.txt'), 'hello\n');
const server = await startModelServer({
  protocol: which === 'claude' ? 'anthropic' : 'openai-responses',
  script: (req, i) => (i < 6 ? { text: `turn ${i}`, usage: { input: 1, output: 1 } } : undefined),
});
const env = { PATH: '/usr/bin:/bin', HOME: home, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'tok', OZ_KEY: 'tok', DISABLE_AUTOUPDATER: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_TELEMETRY: '1', CODEX_HOME: home };
const argv = which === 'claude'
  ? ['/tmp/clis/node_modules/@anthropic-ai/claude-code/bin/claude.exe', '-p', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions', '--model', 'claude-sonnet-4-5']
  : ['/tmp/clis/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex', 'exec', '--json', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox', '-m', 'gpt-5', '-c', 'model_provider="oz"', '-c', `model_providers.oz={name="oz", base_url="${server.url}/v1", env_key="OZ_KEY", wire_api="responses"}`, '-'];
import { chmodSync } from 'node:fs';
chmodSync(home, 0o777); chmodSync(work, 0o777);
const full = ['setpriv', '--reuid=12345', '--regid=12345', '--clear-groups', ...argv];
const child = spawn(full[0]!, full.slice(1), { cwd: work, env, stdio: ['pipe', 'pipe', 'pipe'] });
child.stdin.end('Say hi');
let out = '';
child.stdout.on('data', (c) => (out += c));
child.stderr.on('data', (c) => process.stderr.write(c));
const code = await new Promise((r) => { child.on('close', r); setTimeout(() => child.kill('SIGKILL'), 60_000); });
console.log('exit', code);
for (const line of out.split("\n")) if (line && !line.includes("\"subtype\":\"init\"")) console.log(line.slice(0, 700));
for (const r of server.requests) {
  const b = r.body as Record<string, unknown>;
  console.log('REQ', r.path, JSON.stringify(r.headers['x-api-key'] ?? r.headers.authorization), 'stream', r.stream, 'tools', JSON.stringify((b.tools as {name?: string; type?: string}[] | undefined)?.map((t) => t.name ?? t.type)), 'model', b.model);
}
console.log('failures', server.failures);
const tools = ((server.requests[0]?.body as Record<string, unknown>).tools as Record<string, unknown>[]) ?? [];
for (const t of tools) if (['exec_command', 'Read', 'Edit', 'Bash', 'apply_patch'].includes(String(t.name))) console.log('TOOL', JSON.stringify(t).slice(0, 1500));
await server.close();
