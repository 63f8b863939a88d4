/**
 * Which store a command reads: `--store PATH` (an lmdb folder), else the
 * store of `--config FILE`, else the default options (with the EVENTRAIL_*
 * environment), as a bus started in the same place would use.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Codec } from '../codec.js';
import { resolveOptions, type ResolvedOptions, type StoreOptions } from '../options.js';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/store.js';

export interface StoreFlags {
  readonly store?: string;
  readonly config?: string;
}

/** A command's failure that is not a usage error (exit code 1). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

export function optionsOf(flags: StoreFlags): ResolvedOptions {
  return resolveOptions(flags.config ?? {});
}

export function storeOptionsOf(flags: StoreFlags, options: ResolvedOptions): StoreOptions {
  if (flags.store !== undefined) {
    return { kind: 'lmdb', path: resolve(flags.store), prefix: options.store.kind === 'none' ? 'eventrail' : options.store.prefix };
  }
  return options.store;
}

export function describeStore(store: StoreOptions): string {
  switch (store.kind) {
    case 'lmdb':
      return `lmdb store ${store.path} (prefix ${store.prefix})`;
    case 'fdb':
      return `FoundationDB store (prefix ${store.prefix}${store.clusterFile ? `, cluster file ${store.clusterFile}` : ''})`;
    case 'none':
      return "store { kind: 'none' }";
  }
}

export interface OpenedStore {
  readonly store: EventStore;
  readonly codec: Codec;
  readonly options: ResolvedOptions;
  readonly storeOptions: StoreOptions;
}

/** Opens the store for reading; an lmdb folder must already hold a store (reading never creates one). */
export async function openForReading(flags: StoreFlags): Promise<OpenedStore> {
  const options = optionsOf(flags);
  const storeOptions = storeOptionsOf(flags, options);
  if (storeOptions.kind === 'none') {
    throw new CommandError(
      "the configured store is { kind: 'none' }, which keeps nothing: give --store PATH or a --config whose store is lmdb or fdb",
    );
  }
  if (storeOptions.kind === 'lmdb' && !existsSync(join(storeOptions.path, 'data.mdb'))) {
    throw new CommandError(`no eventrail store at ${storeOptions.path} (no data.mdb there): give --store PATH or --config FILE`);
  }
  const store = await openStore(storeOptions);
  return { store: store!, codec: new Codec(), options, storeOptions };
}
