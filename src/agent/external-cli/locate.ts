import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Where the agent CLIs' native binaries are on this worker, when the npm
 * packages are installed next to Oz (`@anthropic-ai/claude-code`,
 * `@openai/codex`): both ship one binary per platform in an optional
 * dependency, which is what runs inside the sandbox (no Node needed there).
 * `OZ_CLAUDE_BIN` / `OZ_CODEX_BIN` override these.
 */
const PLATFORMS: Partial<Record<string, { claude: string; codex: [string, string] }>> = {
  x64: { claude: '@anthropic-ai/claude-code-linux-x64', codex: ['@openai/codex-linux-x64', 'x86_64-unknown-linux-musl'] },
  arm64: { claude: '@anthropic-ai/claude-code-linux-arm64', codex: ['@openai/codex-linux-arm64', 'aarch64-unknown-linux-musl'] },
};

function packageDir(name: string): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch {
    return null;
  }
}

export function installedClaude(): string | null {
  const platform = process.platform === 'linux' ? PLATFORMS[process.arch] : undefined;
  const dir = platform ? packageDir(platform.claude) : null;
  const bin = dir ? join(dir, 'claude') : null;
  return bin && existsSync(bin) ? bin : null;
}

export function installedCodex(): string | null {
  const platform = process.platform === 'linux' ? PLATFORMS[process.arch] : undefined;
  const dir = platform ? packageDir(platform.codex[0]) : null;
  const bin = dir && platform ? join(dir, 'vendor', platform.codex[1], 'bin', 'codex') : null;
  return bin && existsSync(bin) ? bin : null;
}
