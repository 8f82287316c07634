import { describeLifecycleContract } from './lifecycle-contract.js';

describeLifecycleContract('sqlite');
