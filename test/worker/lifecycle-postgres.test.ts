import { describe } from 'vitest';
import { resolveTestPostgres } from '../support/store-factories.js';
import { describeLifecycleContract } from './lifecycle-contract.js';

const url = await resolveTestPostgres();

describe.skipIf(url === null)('on PostgreSQL', () => {
  describeLifecycleContract('postgres', url ?? '');
});
