/**
 * Step status from the store, for `rise plan`. Without a database there is nothing to look up (and
 * planning must not create a `.rise/` folder as a side effect).
 */
import { openStore, stepStatuses, storeExists } from '../store/index.ts';
import type { StatusSource } from './plan.ts';

export function storeStatus(): StatusSource {
  if (!storeExists()) return null;
  return async (keys) => {
    const store = await openStore();
    try {
      const statuses = await stepStatuses(store, keys);
      return (key) => statuses.get(key) ?? 'pending';
    } finally {
      await store.close();
    }
  };
}
