/**
 * Step status from the store, for `rise plan`. The store is opened on first use and only if its
 * database exists: planning must not create a `.rise/` folder as a side effect.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, resolveHome, stepStatus, type Store } from '../store/index.ts';
import type { StatusLookup } from './plan.ts';

export function storeStatus(): StatusLookup {
  let store: Store | null | undefined;
  return (key) => {
    if (store === undefined) store = existsSync(join(resolveHome(), 'rise.db')) ? openStore() : null;
    return store ? stepStatus(store, key) : 'missing';
  };
}
