/**
 * Values over MAX_VALUE_BYTES (FoundationDB's value limit, applied on every
 * backend so both store the same bytes) are split into chunks under
 * consecutive keys: blocks, audit blocks and dead letters. This file cuts
 * them and gathers them back from keys read in order.
 */
import { StoreCorruptError } from '../../errors.js';
import { MAX_VALUE_BYTES } from '../limits.js';
import type { Position } from '../store.js';
import type { Stamp } from './positions.js';

/** Splits a value into chunks of at most MAX_VALUE_BYTES (views, not copies); an empty value is one empty chunk. */
export function chunkValue(value: Buffer, maxBytes = MAX_VALUE_BYTES): Buffer[] {
  if (value.length <= maxBytes) return [value];
  const chunks: Buffer[] = [];
  for (let at = 0; at < value.length; at += maxBytes) chunks.push(value.subarray(at, Math.min(at + maxBytes, value.length)));
  return chunks;
}

/** Reassembles chunks read in key order. */
export function joinChunks(chunks: readonly Buffer[]): Buffer {
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}

/** One value gathered from its chunks: whole, or the reason it cannot be (a chunk missing or out of order). */
export type Gathered<K> =
  | { readonly id: K; readonly value: Buffer; readonly corrupt?: undefined }
  | { readonly id: K; readonly value?: undefined; readonly corrupt: StoreCorruptError };

/**
 * Gathers chunked values (blocks, audit blocks, dead letters) from keys read
 * in key order, where the chunks of one value are consecutive and numbered
 * from 0. `add` hands back the previous value once a key of the next one
 * arrives, `finish` the last. A value whose chunk numbers do not run 0, 1, 2,
 * ... comes back as `corrupt` (coded StoreCorruptError) instead of aborting
 * the scan, so a reader reports it and goes on with the next value.
 */
export class ChunkGatherer<K> {
  readonly #same: (a: K, b: K) => boolean;
  readonly #describe: (id: K) => string;
  #id: K | undefined;
  #chunks: Buffer[] = [];
  #problem: string | null = null;

  constructor(same: (a: K, b: K) => boolean, describe: (id: K) => string) {
    this.#same = same;
    this.#describe = describe;
  }

  add(id: K, chunk: number, value: Buffer): Gathered<K> | null {
    let done: Gathered<K> | null = null;
    if (this.#id !== undefined && !this.#same(this.#id, id)) done = this.finish();
    if (this.#id === undefined) this.#id = id;
    if (this.#problem === null && chunk !== this.#chunks.length) this.#problem = `chunk ${chunk} where ${this.#chunks.length} was expected`;
    this.#chunks.push(value);
    return done;
  }

  /** The value being gathered, if any, as it stands; the gatherer is then empty. */
  finish(): Gathered<K> | null {
    const id = this.#id;
    if (id === undefined) return null;
    const chunks = this.#chunks;
    const problem = this.#problem;
    this.#id = undefined;
    this.#chunks = [];
    this.#problem = null;
    if (problem !== null) return { id, corrupt: new StoreCorruptError(`${this.#describe(id)}: ${problem}`) };
    return { id, value: joinChunks(chunks) };
  }
}

/** Gathers blocks (or audit blocks) by stamp. */
export function blockGatherer(what = 'block'): ChunkGatherer<Stamp> {
  return new ChunkGatherer<Stamp>(
    (a, b) => a.equals(b),
    (stamp) => `${what} ${stamp.toString('hex')}`,
  );
}

/** Which dead letter a key belongs to. */
export interface DeadLetterId {
  readonly consumer: string;
  readonly position: Position;
}

/** Gathers dead letters by consumer and position. */
export function deadLetterGatherer(): ChunkGatherer<DeadLetterId> {
  return new ChunkGatherer<DeadLetterId>(
    (a, b) => a.consumer === b.consumer && a.position.equals(b.position),
    (id) => `dead letter ${id.consumer}/${id.position.toString('hex')}`,
  );
}
