import { describe } from 'vitest';
import { postgresFactory, resolveTestPostgres } from '../support/store-factories.js';
import { describeSchedulerContract, describeSchedulerRace } from './scheduler-contract.js';

// Skipped only when PostgreSQL is unreachable outside CI; under CI=true this throws.
const url = await resolveTestPostgres();

describe.skipIf(url === null)('on PostgreSQL', () => {
  describeSchedulerContract(postgresFactory(url ?? ''));
  describeSchedulerRace(postgresFactory(url ?? ''), 500);
});
