import { describe } from 'vitest';
import { resolveTestPostgres } from '../support/store-factories.js';
import { describeApiContract } from './api-contract.js';

// Skipped only when PostgreSQL is unreachable outside CI; under CI=true this throws.
const url = await resolveTestPostgres();

describe.skipIf(url === null)('on PostgreSQL', () => {
  describeApiContract('postgres', url ?? '');
});
