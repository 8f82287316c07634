import { describe, expect, it } from 'vitest';
import { mapDevcontainer, shellQuote } from '../../src/server/devcontainer/devcontainer-mapping.js';

const SOURCE = { owner: 'acme', repo: 'web', path: '.devcontainer/devcontainer.json' };
const map = (text: string) => mapDevcontainer(text, SOURCE);
/** The OzError a mapping throws, as the API would answer it. */
const refusal = (text: string): { code: string; status: number; reason: string | undefined; message: string } => {
  try {
    map(text);
  } catch (error) {
    const e = error as { code: string; status: number; reason: string | undefined; message: string };
    return { code: e.code, status: e.status, reason: e.reason, message: e.message };
  }
  throw new Error('expected the mapping to refuse the file');
};

describe('devcontainer.json as environment fields', () => {
  it('maps image, containerEnv and remoteEnv, and the lifecycle commands in order, from JSON with comments', () => {
    const fields = map(`{
      // the image
      "image": "mcr.microsoft.com/devcontainers/typescript-node:1-20",
      /* variables */
      "containerEnv": { "A": "1", "B": "container" },
      "remoteEnv": { "B": "remote", "A": null, "C": "3" },
      "onCreateCommand": "npm ci",
      "updateContentCommand": ["npm", "run", "build it", "it's"],
      "postCreateCommand": { "zeta": "echo z", "10": "echo ten", "alpha": ["echo", "a"] },
      "postStartCommand": "ignored: runs on every start of a desktop container",
      "customizations": { "vscode": { "extensions": ["dbaeumer.vscode-eslint"] } },
      "forwardPorts": [3000],
      "features": {},
    }`);
    expect(fields).toEqual({
      docker_image: 'mcr.microsoft.com/devcontainers/typescript-node:1-20',
      env: { B: 'remote', C: '3' },
      setup_commands: ['npm ci'],
      maintenance_commands: ["npm run 'build it' 'it'\\''s'", 'echo z', 'echo ten', 'echo a'],
    });
  });

  it('gives nothing for what the file leaves out, and skips empty commands', () => {
    expect(map('{ "name": "x" }')).toEqual({});
    expect(map('{ "postCreateCommand": "", "onCreateCommand": [], "updateContentCommand": { "a": "  " } }')).toEqual({});
  });

  it('quotes exec-form words for a POSIX shell', () => {
    expect(shellQuote('plain-word_1.2/x:y=z')).toBe('plain-word_1.2/x:y=z');
    expect(shellQuote('two words')).toBe("'two words'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('$HOME;rm -rf /')).toBe("'$HOME;rm -rf /'");
  });

  it('answers what this server cannot do with feature_not_available naming it', () => {
    for (const [text, reason] of [
      ['{ "build": { "dockerfile": "Dockerfile" } }', 'devcontainer.build.dockerfile'],
      ['{ "build": { "context": ".." } }', 'devcontainer.build'],
      ['{ "dockerFile": "Dockerfile" }', 'devcontainer.dockerFile'],
      ['{ "dockerComposeFile": "compose.yml", "service": "app" }', 'devcontainer.dockerComposeFile'],
      ['{ "image": "node:22", "features": { "ghcr.io/devcontainers/features/go:1": {} } }', 'devcontainer.features'],
    ] as const) {
      const refused = refusal(text);
      expect(refused, text).toMatchObject({ code: 'feature_not_available', reason });
      expect(refused.message).toContain(reason);
      expect(refused.message).toContain('.devcontainer/devcontainer.json in acme/web');
    }
    expect(refusal('{ "features": { "ghcr.io/devcontainers/features/go:1": {} } }').message).toContain('ghcr.io/devcontainers/features/go:1');
  });

  it('runs the harness as remoteUser, else containerUser, and names a bad one', () => {
    expect(map('{ "image": "node:22", "remoteUser": "node" }')).toMatchObject({ agent_user: 'node' });
    expect(map('{ "image": "node:22", "containerUser": "1000:1000" }')).toMatchObject({ agent_user: '1000:1000' });
    expect(map('{ "image": "node:22", "remoteUser": "vscode", "containerUser": "root" }')).toMatchObject({ agent_user: 'vscode' });
    expect(() => map('{ "image": "node:22", "remoteUser": "a b" }')).toThrow(/devcontainer\.remoteUser/);
    expect(() => map('{ "image": "node:22", "remoteUser": 7 }')).toThrow(/devcontainer\.remoteUser/);
  });

  it('refuses devcontainer substitutions with a 400 naming the key', () => {
    for (const [text, reason] of [
      ['{ "containerEnv": { "TOKEN": "${localEnv:GITHUB_TOKEN}" } }', 'devcontainer.containerEnv.TOKEN'],
      ['{ "remoteEnv": { "PATH": "${containerEnv:PATH}:/opt/bin" } }', 'devcontainer.remoteEnv.PATH'],
      ['{ "postCreateCommand": "cd ${containerWorkspaceFolder} && npm ci" }', 'devcontainer.postCreateCommand'],
      ['{ "postCreateCommand": { "deps": ["npm", "--prefix", "${localWorkspaceFolder}", "ci"] } }', 'devcontainer.postCreateCommand.deps[2]'],
      ['{ "image": "node:${localEnv:NODE_VERSION}" }', 'devcontainer.image'],
    ] as const) {
      const refused = refusal(text);
      expect(refused, text).toMatchObject({ code: 'invalid_request', status: 400, reason });
      expect(refused.message).toContain(`${reason}: `);
      expect(refused.message).toContain('devcontainer substitution');
    }
    // A shell's own ${VAR} is no devcontainer substitution.
    expect(map('{ "postCreateCommand": "echo ${HOME}" }').maintenance_commands).toEqual(['echo ${HOME}']);
  });

  it('refuses values of the wrong type, and values the environment refuses, naming the key', () => {
    expect(refusal('{ "containerEnv": { "N": 1 } }')).toMatchObject({ code: 'invalid_request', reason: 'devcontainer.containerEnv.N' });
    expect(refusal('{ "containerEnv": { "PATH": "/evil" } }')).toMatchObject({ code: 'invalid_request', reason: 'devcontainer.containerEnv.PATH' });
    expect(refusal('{ "image": 7 }')).toMatchObject({ reason: 'devcontainer.image' });
    expect(refusal('{ "image": "not an image!" }')).toMatchObject({ reason: 'devcontainer.image' });
    expect(refusal('{ "onCreateCommand": 7 }')).toMatchObject({ reason: 'devcontainer.onCreateCommand' });
    expect(refusal('{ "onCreateCommand": ["npm", 7] }')).toMatchObject({ reason: 'devcontainer.onCreateCommand[1]' });
    expect(refusal(`{ "postCreateCommand": { "big": ${JSON.stringify('x'.repeat(10_001))} } }`)).toMatchObject({ reason: 'devcontainer.postCreateCommand.big' });
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`c${i}`, `echo ${i}`]));
    expect(refusal(JSON.stringify({ onCreateCommand: many }))).toMatchObject({ code: 'invalid_request', reason: 'devcontainer' });
  });

  it("answers a file that is not JSON with comments with the parser's offset, line and column", () => {
    const refused = refusal('{\n  "image": "node:22"\n  "x": 1\n}');
    expect(refused).toMatchObject({ code: 'invalid_request', status: 400, reason: 'devcontainer' });
    expect(refused.message).toMatch(/CommaExpected at offset 25 \(line 3, column 3\)/);
    expect(refusal('[1, 2]').message).toContain('must hold a JSON object');
    expect(refusal('').reason).toBe('devcontainer');
  });
});
