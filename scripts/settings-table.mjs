// Rewrites the README's configuration table from the settings table
// (src/core/settings/table.ts): `npm run docs:settings` (tsx runs the
// TypeScript it imports). `--check` only reports a README that differs.
import { readFileSync, writeFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';
import { withSettingsTable } from '../src/core/settings/markdown.ts';

const readmePath = fileURLToPath(new URL('../README.md', import.meta.url));
const readme = readFileSync(readmePath, 'utf8');
const updated = withSettingsTable(readme);
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    console.error('README.md: the configuration table is not the generated one; run npm run docs:settings');
    process.exit(1);
  }
} else if (updated !== readme) {
  writeFileSync(readmePath, updated);
  console.log('README.md: configuration table updated');
}
