/** Opens the data directory given in argv[2], says "holding", and waits to be killed. */
import { openSqliteDataDir } from '../../src/store/sqlite/open-sqlite-store.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: hold-data-dir <dir>');
await openSqliteDataDir(dir);
process.stdout.write('holding\n');
setInterval(() => {}, 60_000);
