/**
 * How a retried FoundationDB append transaction tells whether an earlier
 * attempt of it committed. Pure: the appender (fdb-append.ts) does the reads
 * and writes.
 *
 * `db.doTransaction` retries FoundationDB's retryable errors, among them
 * commit_unknown_result (1021), after which the attempt may or may not have
 * committed. It is no longer in flight by then: before reporting 1021 the
 * client commits a dummy transaction that conflicts with the attempt's
 * self-conflicting range (`tryCommit` → `commitDummyTransaction` in
 * fdbclient/NativeAPI.actor.cpp), so the attempt can no longer commit.
 *
 * Each attempt that writes also writes a fresh random nonce under
 * `(prefix,'nonce',nonce)`, its value the commit versionstamp
 * (SET_VERSIONSTAMPED_VALUE), in the same transaction: it is stored exactly
 * when the attempt's batch is. A retry reads the nonce of the attempt before
 * it (a non-snapshot read, so a racing commit of that attempt would make the
 * retry conflict and run again): found, that attempt committed at the stamp
 * the value holds, and the retry returns its positions without writing
 * anything; absent, it did not and never will, and the retry plans the batch
 * afresh, reading the caller-supplied ids like a first attempt, so an id that
 * another writer stored meanwhile is a genuine duplicate.
 *
 * Inferring the earlier commit from the id index instead (the same ids at the
 * same block indices of one stamp) cannot tell this append's commit from
 * another instance's commit of the same caller-supplied ids: both would
 * answer `duplicate: false`.
 */
import { randomBytes } from 'node:crypto';
import { StoreCorruptError } from '../errors.js';
import { NONCE_CHARS } from './fdb-batches.js';
import type { AppendPlan } from './layout/append-plan.js';
import { STAMP_BYTES, type Stamp } from './layout/positions.js';

/** An attempt that wrote its plan, and with it its nonce. */
export interface AppendAttempt {
  readonly nonce: string;
  readonly plan: AppendPlan;
}

/** A fresh nonce for one attempt: 16 random bytes, in hex. */
export function newNonce(): string {
  return randomBytes(NONCE_CHARS / 2).toString('hex');
}

/**
 * Which of `unsettled` (attempts that wrote, not yet seen absent by a later
 * attempt) committed, given `found[i]`, the value a retry read at the nonce
 * key of `unsettled[i]`, and at which stamp; null when none did. A
 * transaction commits whole and a retry that finds a commit writes nothing, so
 * at most one is found; the first is taken.
 */
export function earlierCommit(
  unsettled: readonly AppendAttempt[],
  found: readonly (Buffer | undefined)[],
): { readonly attempt: AppendAttempt; readonly stamp: Stamp } | null {
  for (let i = 0; i < unsettled.length; i++) {
    const value = found[i];
    if (value === undefined) continue;
    if (value.length !== STAMP_BYTES)
      throw new StoreCorruptError(
        `the nonce of append attempt ${unsettled[i]!.nonce} holds ${value.length} bytes, expected a ${STAMP_BYTES}-byte stamp`,
      );
    return { attempt: unsettled[i]!, stamp: Buffer.from(value) };
  }
  return null;
}
