import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

/** Programs the platform runs inside sandboxes, on the worker's node: one home (docs/design.md "Layers"). */
const SANDBOXED_PROGRAMS = ['src/in-sandbox/**'];

/** A layer may not import from these folders (relative imports; patterns as gitignore). */
function layer(files, forbidden, message) {
  return { files: [files], rules: { 'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message }] }] } };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  { files: ['**/*.ts'], rules: { '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }] } },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // Fastify handlers and hooks are async by contract even when they await nothing.
      '@typescript-eslint/require-await': 'off',
      // String(value) of an unknown caught value or a JSON field is deliberate (messages, logs).
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: 'Read the environment only in src/core/config.ts (and test/bench support).',
        },
      ],
    },
  },
  {
    // Tests build expectations from vitest's asymmetric matchers (expect.any(…) is typed any).
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off', '@typescript-eslint/no-unsafe-argument': 'off' },
  },
  {
    // The harness-support client runs alone inside sandboxes (no config module there).
    files: ['src/core/config.ts', 'src/in-sandbox/harness-support-client.ts', 'scripts/**', 'test/**', 'bench/**', 'vitest.config.ts', '.ci/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  // Layers (docs/design.md "Layers"): dependencies point one way.
  layer(
    'src/core/**',
    ['../api/*', '../store/*', '../server/*', '../worker/*', '../sandbox/*', '../agent/*', '../secrets/*', '../client/*', '../cli/*', '../main/*', '../harness-support/*'],
    'src/core imports nothing of ours',
  ),
  layer(
    'src/api/**',
    ['../store/*', '../server/*', '../worker/*', '../sandbox/*', '../agent/*', '../secrets/*', '../client/*', '../cli/*', '../main/*', '../in-sandbox/*'],
    'src/api (the API contract) builds on src/core and zod only',
  ),
  layer(
    'src/client/**',
    ['**/core/*', '**/store/*', '**/server/*', '**/worker/*', '**/sandbox/*', '**/agent/*', '**/secrets/*', '**/cli/*', '**/main/*'],
    'src/client speaks the API through src/api only',
  ),
  layer('src/store/**', ['**/server/*', '**/worker/*', '**/sandbox/*', '**/agent/*', '**/client/*', '**/cli/*', '**/main/*'], 'src/store builds on src/core only'),
  layer(
    'src/server/**',
    ['**/worker/*', '**/sandbox/*', '**/agent/*', '**/cli/*', '**/main/*'],
    'src/server never imports the worker, sandboxes, agents, the CLI or the composition roots',
  ),
  layer('src/worker/**', ['**/server/*', '**/store/*', '**/cli/*', '**/main/*'], 'src/worker speaks only the worker protocol: no server, store or CLI'),
  layer('src/sandbox/**', ['**/server/*', '**/store/*', '**/worker/*', '**/agent/*', '**/cli/*', '**/main/*'], 'src/sandbox builds on src/core only'),
  layer('src/agent/**', ['**/server/*', '**/store/*', '**/worker/*', '**/cli/*', '**/main/*'], 'src/agent builds on src/core and src/sandbox'),
  layer('src/cli/**', ['**/store/*', '**/server/*', '**/worker/*', '**/sandbox/*', '**/agent/*'], 'src/cli reaches the store, server and worker only through src/main'),
  layer(
    'web/**',
    ['**/src/store/*', '**/src/server/*', '**/src/worker/*', '**/src/sandbox/*', '**/src/agent/*', '**/src/secrets/*', '**/src/cli/*', '**/src/main/*', '**/src/in-sandbox/*'],
    'the dashboard uses only the public API: src/api, src/client and src/core',
  ),
  {
    files: ['web/**/*.tsx', 'web/**/*.ts'],
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error', 'react-hooks/exhaustive-deps': 'error' },
  },
  {
    // Programs that run alone inside a sandbox, on the worker's node binary:
    // Node built-ins only (types are erased), whatever the image holds.
    files: SANDBOXED_PROGRAMS,
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['*', '!node:*'], allowTypeImports: true, message: 'runs alone inside the sandbox: Node built-ins only' }] }],
    },
  },
  {
    files: ['bin/**/*.js', 'scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
