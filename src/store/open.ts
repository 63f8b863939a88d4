/**
 * Opens the store that the options select. The FoundationDB backend is loaded
 * with `await import()` only when chosen, so its native client library is
 * never required by a bus that does not use it.
 */
import type { StoreOptions } from '../options.js';
import type { EventStore } from './store.js';

/** How a store is opened beyond its options. */
export interface OpenStoreSettings {
  /** lmdb: how often waitForAppend() looks for another process's appends, in ms (default 25). */
  readonly pollMs?: number;
}

/** The store for `options.store`, or null for `{ kind: 'none' }` (no durability, no replay). */
export async function openStore(options: StoreOptions, settings: OpenStoreSettings = {}): Promise<EventStore | null> {
  switch (options.kind) {
    case 'none':
      return null;
    case 'lmdb': {
      const { LmdbStore } = await import('./lmdb.js');
      return LmdbStore.open({
        path: options.path,
        prefix: options.prefix,
        ...(options.mapSize === undefined ? {} : { mapSize: options.mapSize }),
        ...(settings.pollMs === undefined ? {} : { pollMs: settings.pollMs }),
      });
    }
    case 'fdb': {
      const { FdbStore } = await import('./fdb.js');
      return FdbStore.open(options);
    }
  }
}
