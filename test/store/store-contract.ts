import type { StoreFactory } from '../support/store-factories.js';
import { claimContract } from './contract/claims.contract.js';
import { fairShareContract } from './contract/fair-share.contract.js';
import { resourceContract } from './contract/resources.contract.js';
import { runContract } from './contract/runs.contract.js';
import { transitionContract } from './contract/transitions.contract.js';
import { workerPoolContract } from './contract/worker-pools.contract.js';
import { followupContract } from './contract/followups.contract.js';
import { webSessionContract } from './contract/web-sessions.contract.js';

/** The one store contract, run against every database (sqlite-store.test.ts, postgres-store.test.ts). */
export function describeStoreContract(factory: StoreFactory): void {
  transitionContract(factory);
  claimContract(factory);
  fairShareContract(factory);
  runContract(factory);
  resourceContract(factory);
  workerPoolContract(factory);
  followupContract(factory);
  webSessionContract(factory);
}
