import { describe } from 'vitest';
import { postgresFactory, resolveTestPostgres } from '../support/store-factories.js';
import { describeStoreContract } from './store-contract.js';

// Skipped only when PostgreSQL is unreachable outside CI; under CI=true this throws.
const url = await resolveTestPostgres();

describe.skipIf(url === null)('store contract on PostgreSQL', () => {
  describeStoreContract(postgresFactory(url ?? ''));
});
