/**
 * The one msgpack codec, shared by the main thread, the workers and the
 * stores. Its record structures are fixed and declared here, identically on
 * every side, so any buffer can be decoded anywhere without exchanging
 * structure tables: events and metadata use the short shared form, and other
 * shapes (payload objects) are written in-band. Each Codec owns its Packr and
 * its event writer; the bus and each worker keep one.
 *
 * Events, the hot path, are written by the EventWriter (event-writer.ts),
 * which writes the same records without msgpackr's per-call costs; this
 * Packr reads both forms.
 */
import { Packr } from 'msgpackr';
import { AUDIT_ENTRY_KEYS, EVENT_KEYS, METADATA_KEYS, type Event } from './event/event.js';
import { ARENA_BYTES, EventWriter, type EventDraft, type GeneratedFields } from './event-writer.js';

export { type EventDraft, type GeneratedFields } from './event-writer.js';
export { NotJsonError } from './msgpack-write.js';
// Registers the msgpack extensions of events stored with an envelope (catalogue version, trace context)
// and of payload objects holding the key __proto__.
import './event/envelope.js';
import './event/proto-keyed.js';

const DEAD_LETTER_KEYS = ['event', 'consumer', 'error', 'attempts', 'failed_at'] as const;
const ERROR_KEYS = ['code', 'name', 'message', 'stack'] as const;

/** Changing this list changes stored bytes: append only, never reorder. The event writer relies on the first two. */
const SHARED_STRUCTURES: readonly (readonly string[])[] = [EVENT_KEYS, METADATA_KEYS, AUDIT_ENTRY_KEYS, DEAD_LETTER_KEYS, ERROR_KEYS];

export class Codec {
  readonly #packr: Packr;
  /** The structure table msgpackr decodes with, and its shared entries as declared. */
  readonly #structures: unknown[];
  readonly #shared: readonly unknown[];
  readonly #writer = new EventWriter();

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
    this.#structures = (this.#packr as unknown as { structures: unknown[] }).structures;
    this.#shared = [...this.#structures];
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

  /**
   * Encodes an event into the event writer's arena and returns a view of it
   * (the same guarantee as `encodeView`: the range is never written over).
   */
  encodeEvent(event: Event, maxDepth?: number): Buffer {
    return this.#writer.encodeEvent(event, maxDepth);
  }

  /** The intake's form of `encodeEvent`: see EventWriter.encodeDraft. */
  encodeDraft(draft: EventDraft, maxDepth: number, ids: GeneratedFields | null, maxBytes?: number): number {
    return this.#writer.encodeDraft(draft, maxDepth, ids, maxBytes);
  }

  /** The arena the last encoded event is in. */
  get lastArena(): Buffer {
    return this.#writer.lastArena;
  }

  /** Where the last encoded event ends in `lastArena`. */
  get lastEnd(): number {
    return this.#writer.lastEnd;
  }

  decode<T = unknown>(bytes: Uint8Array): T {
    try {
      return this.#packr.unpack(bytes) as T;
    } finally {
      this.#restoreStructures();
    }
  }

  /** Decodes a buffer holding several values back to back. */
  decodeMany<T = unknown>(bytes: Uint8Array): T[] {
    try {
      return this.#packr.unpackMultiple(bytes) as T[];
    } finally {
      this.#restoreStructures();
    }
  }

  /**
   * Puts the structure table back as declared after a decode. msgpackr keeps
   * a record definition met in the input, even one that redefines a shared
   * structure (it only restores those when the shared table is loaded through
   * `getStructures`, and never in `unpackMultiple`): one garbled byte that turns
   * a reference into a definition would then make every later value decode
   * wrongly. What the bytes define lives only as long as the bytes.
   */
  #restoreStructures(): void {
    const table = this.#structures;
    const shared = this.#shared;
    if (table.length !== shared.length) table.length = shared.length;
    for (let i = 0; i < shared.length; i++) if (table[i] !== shared[i]) table[i] = shared[i];
  }
}
