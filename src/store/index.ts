/** The store's API: open it once per process, pass the Store to the functions of each module. */
export { MIGRATIONS_DIR, StoreConfigError, openStore, parseDatabase, rawRows, redactUrl, resolveHome, storeExists, writeTx, type Db, type Dialect, type Store, type StoreOptions, type Tx } from './db.ts';
export * from './artifacts.ts';
export { InputNotReadyError, LostStepError, claimStep, dependents, failStep, finishStep, getStep, markStale, renewLease, startStep, stepStatus, stepStatuses, type Claim, type Lease, type PlannedStep, type WriteGuard, type StepAttempt, type StepInfo, type StepState } from './steps.ts';
export * from './ledger.ts';
export * from './calls.ts';
export * from './examples.ts';
export * from './metrics.ts';
export * from './runs.ts';
export * from './quarantine.ts';
export * from './usage.ts';
export * from './shards.ts';
