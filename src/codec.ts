/**
 * The one msgpack codec, shared by the main thread, the workers and the
 * stores. Its record structures are fixed and declared here, identically on
 * every side, so any buffer can be decoded anywhere without exchanging
 * structure tables: events and metadata use the short shared form, and other
 * shapes (payload objects) are written in-band. Each Codec owns its Packr; the
 * bus and each worker keep one.
 */
import { Packr } from 'msgpackr';
import { AUDIT_ENTRY_KEYS, EVENT_KEYS, METADATA_KEYS } from './event/event.js';

const DEAD_LETTER_KEYS = ['event', 'consumer', 'error', 'attempts', 'failed_at'] as const;
const ERROR_KEYS = ['code', 'name', 'message', 'stack'] as const;

/** Changing this list changes stored bytes: append only, never reorder. */
const SHARED_STRUCTURES: readonly (readonly string[])[] = [EVENT_KEYS, METADATA_KEYS, AUDIT_ENTRY_KEYS, DEAD_LETTER_KEYS, ERROR_KEYS];

/** Bytes per encoding arena. */
const ARENA_BYTES = 1 << 20;

export class Codec {
  readonly #packr: Packr;

  constructor() {
    this.#packr = new Packr({
      structures: SHARED_STRUCTURES.map((s) => [...s]),
      maxSharedStructures: SHARED_STRUCTURES.length,
      // Plain JS values only: no Map/Set/Date revival on decode.
      mapsAsObjects: true,
      moreTypes: false,
    });
    // Large arenas: one allocation per ~3000 events instead of one per ~25.
    this.#packr.useBuffer(Buffer.allocUnsafeSlow(ARENA_BYTES));
  }

  /** Encodes into a buffer the caller owns (msgpackr's own result is a view of a reused buffer). */
  encode(value: unknown): Buffer {
    const view = this.#packr.pack(value);
    const owned = Buffer.allocUnsafeSlow(view.length);
    view.copy(owned);
    return owned;
  }

  /**
   * Encodes into the codec's own arena and returns a view of it, without a
   * copy. The view stays valid: msgpackr writes each value after the previous
   * one and moves to a new buffer when one fills, never over a returned range.
   * Do not post such a view to another thread (it would carry the whole arena).
   */
  encodeView(value: unknown): Buffer {
    return this.#packr.pack(value);
  }

  decode<T = unknown>(bytes: Uint8Array): T {
    return this.#packr.unpack(bytes) as T;
  }

  /** Decodes a buffer holding several values back to back. */
  decodeMany<T = unknown>(bytes: Uint8Array): T[] {
    return this.#packr.unpackMultiple(bytes) as T[];
  }
}
