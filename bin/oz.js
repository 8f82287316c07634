#!/usr/bin/env node
// The `oz` executable: runs the compiled CLI (`npm run build` produces dist/).
import('../dist/main/cli.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/main/cli.js')) {
    console.error('oz: the CLI is not built yet; run `npm run build` first');
    process.exit(1);
  }
  throw error;
});
