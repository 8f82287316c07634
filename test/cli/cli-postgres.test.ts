import { describe } from 'vitest';
import { resolveTestPostgres } from '../support/store-factories.js';
import { describeCliContract } from './cli-contract.js';

const url = await resolveTestPostgres();

describe.skipIf(url === null)('on PostgreSQL', () => {
  describeCliContract('postgres', url ?? '');
});
