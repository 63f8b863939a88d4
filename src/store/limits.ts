/**
 * The size limits of the store, each defined here once. FoundationDB's
 * (https://apple.github.io/foundationdb/known-limitations.html) apply to every
 * backend where they shape the stored bytes (values are chunked at
 * FoundationDB's value limit on lmdb too, so both backends hold the same
 * bytes).
 */

/** FoundationDB's limit on a value; every backend chunks blocks, audit blocks and dead letters at this size. */
export const MAX_VALUE_BYTES = 100_000;
/** FoundationDB's limit on a key. */
export const FDB_MAX_KEY_BYTES = 10_000;
/** FoundationDB's hard limit on the bytes of one transaction. */
export const FDB_MAX_TRANSACTION_BYTES = 10_000_000;
/** The bytes to aim for per FoundationDB append transaction when `store.maxTransactionBytes` is not given (FoundationDB recommends staying near 1 MB). */
export const DEFAULT_MAX_TRANSACTION_BYTES = 1_000_000;
/** Events per block at most: the index within a block is 16 bits (the last two bytes of a position). */
export const MAX_BLOCK_EVENTS = 65_536;
