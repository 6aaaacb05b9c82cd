/**
 * Step status from the store, for `rise plan`. Without a database there is nothing to look up (and
 * planning must not create a `.rise/` folder as a side effect); with one, it is opened on first use.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, resolveHome, stepStatus, type Store } from '../store/index.ts';
import { noStore, type StatusLookup } from './plan.ts';

export function storeStatus(): StatusLookup {
  if (!existsSync(join(resolveHome(), 'rise.db'))) return noStore;
  let store: Store | undefined;
  return (key) => stepStatus((store ??= openStore()), key);
}
