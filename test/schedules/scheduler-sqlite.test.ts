import { sqliteFactory } from '../support/store-factories.js';
import { describeSchedulerContract, describeSchedulerRace } from './scheduler-contract.js';

describeSchedulerContract(sqliteFactory);
describeSchedulerRace(sqliteFactory, 100);
