import { describeApiContract } from '../api/api-contract.js';
import { startInProcessServer } from '../support/in-process-app.js';

// The HTTP API contract against the app in this process, on a real SQLite store: seconds, not a process start.
describeApiContract('sqlite', undefined, startInProcessServer, 'sqlite, in-process');
