import { describe } from 'vitest';
import { sqliteFactory } from '../support/store-factories.js';
import { describeStoreContract } from './store-contract.js';

describe('store contract on SQLite', () => {
  describeStoreContract(sqliteFactory);
});
