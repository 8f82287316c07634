import { describeCliContract } from './cli-contract.js';

describeCliContract('sqlite');
