/**
 * Placeholder so that `open.ts` compiles until the FoundationDB backend is
 * written; it replaces this file.
 */
import { StoreUnavailableError } from '../errors.js';
import type { StoreOptions } from '../options.js';
import type { EventStore } from './store.js';

export class FdbStore {
  static async open(_options: Extract<StoreOptions, { kind: 'fdb' }>): Promise<EventStore> {
    throw new StoreUnavailableError('FoundationDB backend not built yet');
  }
}
