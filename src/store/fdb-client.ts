/**
 * Loading the FoundationDB client: the npm package `foundationdb` and, through
 * its native module, libfdb_c. The package is imported with `await import()`
 * only when a FoundationDB store is opened, so a bus that does not select
 * 'fdb' never loads the native client library; this is the only file that
 * imports `foundationdb` at run time (the other fdb files import its types).
 */
import type * as FoundationDb from 'foundationdb';
import type { Database, Transaction, TransactionOptions } from 'foundationdb';
import { EventrailError, FdbClientMissingError, StoreUnavailableError, type FdbMissingPart } from '../errors.js';

/** What `module.exports` of the CommonJS package holds. */
export type FdbModule = typeof FoundationDb.default;

export type Db = Database;
export type Tn = Transaction;

/**
 * Every transaction, retries included, is cancelled after this long: a
 * cluster that cannot be reached fails the call instead of leaving it pending
 * forever. From API version 610 the timeout survives the retries of onError.
 */
export const TRANSACTION_OPTIONS: TransactionOptions = { timeout: 30_000 };

export type FdbLoadResult = { readonly ok: true; readonly fdb: FdbModule } | { readonly ok: false; readonly error: EventrailError };

/** An error's message, with FoundationDB's numeric code when it has one. */
export function describeFdbError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? `${err.message} (FoundationDB error ${code})` : err.message;
}

/**
 * Which part of the FoundationDB client is missing when loading `foundationdb`
 * failed with `err`, or null when the failure is something else: the package
 * itself (not installed), its native module (node-gyp-build found no build for
 * this platform), or libfdb_c (the module is there but cannot be linked).
 */
export function missingFdbPart(err: unknown): FdbMissingPart | null {
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /['"]foundationdb['"]/.test(err.message)) return 'package';
  if (/No native build was found/.test(err.message)) return 'native-build';
  if (code === 'ERR_DLOPEN_FAILED' || /libfdb_c/.test(err.message)) return 'library';
  return null;
}

/**
 * Imports `foundationdb`. Its native module links libfdb_c when the package
 * is imported, so a machine without the FoundationDB client fails here, as
 * does one without the package or without a native build of it; each becomes
 * FdbClientMissingError (code ERR_EVENTRAIL_FDB_CLIENT_MISSING) whose message
 * names what is missing and how to install it, the loader's error its cause.
 */
export async function loadFoundationDb(): Promise<FdbLoadResult> {
  try {
    const imported = await import('foundationdb');
    // A CommonJS package: its module.exports is the default export.
    return { ok: true, fdb: imported.default };
  } catch (err) {
    const missing = missingFdbPart(err);
    if (missing !== null) return { ok: false, error: new FdbClientMissingError(err, missing) };
    return { ok: false, error: new StoreUnavailableError(`cannot load the foundationdb package: ${describeFdbError(err)}`, err) };
  }
}
