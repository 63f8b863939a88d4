/**
 * The event writer: events, the hot path, are written without msgpackr. The
 * envelope and metadata records are written directly, as references to the
 * codec's shared structures, and the payload (a JSON value, already
 * validated) as plain msgpack maps and arrays. msgpackr would define each
 * payload shape in-band again for every event (its transitions are rebuilt
 * per call for shapes that are not shared), and its per-call set-up costs
 * more than a small payload: together most of the cost of an event. Any
 * msgpack decoder with the same shared structures (the Codec) reads both
 * forms.
 *
 * A writer owns its arenas and its name cache; each Codec holds one, so
 * nothing is shared between buses or threads.
 */
import { isPlainObject, isWellFormed, type Event } from './event/event.js';
import { latin1Slice } from './native-buffer.js';
import { FULL, NIL, NotJsonError, STR8, need, writeBigInt, writeLength, writeNullable, writeNumber, writeString } from './msgpack-write.js';
import { PROTO_KEYED_EXT } from './event/proto-keyed.js';

/** Bytes per encoding arena. */
export const ARENA_BYTES = 1 << 20;

/** msgpackr's reference to shared structure i is the byte 0x40 + i (see SHARED_STRUCTURES in codec.ts). */
const EVENT_RECORD = 0x40;
const METADATA_RECORD = 0x41;
const FIXMAP_1 = 0x81;
const DEFAULT_MAX_DEPTH = 64;

export class EventWriter {
  #arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
  #at = 0;
  #lastArena = this.#arena;
  #lastEnd = 0;
  /** Encoded names, by name (see writeName). */
  readonly #names = new Map<string, Uint8Array>();

  /**
   * Encodes an event into the writer's own arena and returns a view of it.
   * The range is never written over: later events go after it or into a new
   * arena. Do not post such a view to another thread (it would carry the whole arena).
   */
  encodeEvent(event: Event, maxDepth = DEFAULT_MAX_DEPTH): Buffer {
    const start = this.encodeDraft(event, maxDepth, null);
    return this.#lastArena.subarray(start, this.#lastEnd);
  }

  /**
   * The intake's form of `encodeEvent`: no view per event. The event's bytes
   * are `lastArena` from the offset returned to `lastEnd`; the range is never
   * written over. With `ids`, the fields a draft leaves out (event_id,
   * timestamp, metadata.correlation_id) are generated straight into the
   * output, without a string to encode, and then set on the draft, which
   * becomes the complete Event.
   *
   * Returns -1, with nothing generated, when the event is certainly larger
   * than `maxBytes`. The arena then never grows past a bound that `maxBytes`
   * sets: a hostile 200 MiB string costs no 600 MiB of reserved memory.
   */
  encodeDraft(draft: EventDraft, maxDepth: number, ids: GeneratedFields | null, maxBytes = Infinity): number {
    // The string writer reserves 3 bytes per UTF-16 unit before it writes (the worst UTF-8 case),
    // so an event that fits in maxBytes can still need up to 3 * maxBytes (+ a header) of room.
    // Not fitting in that much room proves it is over maxBytes.
    const room = 3 * maxBytes + 16;
    for (;;) {
      const start = this.#at;
      const end = writeEvent(this.#arena, start, draft, maxDepth, ids, this.#names);
      if (end >= 0) {
        this.#lastArena = this.#arena;
        this.#lastEnd = end;
        // The next event starts right here: events encoded one after another lie end to end, and a batch
        // of them is copied into a block or a worker's task with one copy (copyBodies), not one per event.
        this.#at = end;
        return start;
      }
      const tried = this.#arena.length - start;
      if (tried >= room) return -1;
      // Did not fit: continue in a new arena, larger than the event could be if it is a big one.
      this.#arena = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, Math.min(tried * 2, room)));
      this.#at = 0;
    }
  }

  /** The arena the last encoded event is in. */
  get lastArena(): Buffer {
    return this.#lastArena;
  }

  /** Where the last encoded event ends in `lastArena`. */
  get lastEnd(): number {
    return this.#lastEnd;
  }
}

/**
 * What the event writer generates in place when a draft leaves it out: the
 * ASCII bytes written straight into the output, and the same text as a string.
 */
export interface GeneratedFields {
  /** Writes a fresh uuid v7 (36 ASCII bytes) at `at`. */
  writeUuid(out: Buffer, at: number): void;
  /** Writes the current time (RFC 3339 UTC, under 32 ASCII bytes) at `at`; returns its length. */
  writeNow(out: Buffer, at: number): number;
  /** The text `writeNow` wrote last. */
  readonly lastNow: string;
}

/** An event whose generated fields may still be missing (see EventWriter.encodeDraft). */
export interface EventDraft {
  event_id: string | undefined;
  timestamp: string | undefined;
  readonly event_type: Event['event_type'];
  readonly payload: Event['payload'];
  readonly metadata: { correlation_id: string | undefined } & Omit<Event['metadata'], 'correlation_id'>;
}

const UUID_CHARS = 36;

/** An id field: the given one, or a uuid generated at `at` behind its str8 header (its text then starts at `at + 2`). */
function writeIdOrNew(out: Buffer, at: number, value: string | undefined, ids: GeneratedFields | null): number {
  if (value !== undefined) return writeString(out, at, value);
  need(out, at, 2 + UUID_CHARS);
  out[at] = STR8;
  out[at + 1] = UUID_CHARS;
  required(ids).writeUuid(out, at + 2);
  return at + 2 + UUID_CHARS;
}

/** The text of a uuid that writeIdOrNew generated at `at`. */
const generatedUuid = (out: Buffer, at: number): string => latin1Slice(out, at + 2, at + 2 + UUID_CHARS);

/** Writes an event at `at`; returns where it ends, or -1 when it does not fit. */
function writeEvent(
  out: Buffer,
  at: number,
  event: EventDraft,
  maxDepth: number,
  ids: GeneratedFields | null,
  names: Map<string, Uint8Array>,
): number {
  try {
    need(out, at, 1);
    out[at++] = EVENT_RECORD;
    const idAt = at;
    at = writeIdOrNew(out, at, event.event_id, ids);
    let generatedTime = false;
    if (event.timestamp === undefined) {
      need(out, at, 32);
      const n = required(ids).writeNow(out, at + 1);
      out[at] = 0xa0 | n;
      at += 1 + n;
      generatedTime = true;
    } else {
      at = writeString(out, at, event.timestamp);
    }
    const type = event.event_type;
    if (typeof type === 'string') {
      at = writeName(out, at, type, names);
    } else {
      need(out, at, 1);
      out[at++] = FIXMAP_1;
      at = writeName(out, at, 'Custom', names);
      at = writeName(out, at, type.Custom, names);
    }
    at = writeJson(out, at, event.payload, maxDepth, 'payload', names);
    const md = event.metadata;
    need(out, at, 1);
    out[at++] = METADATA_RECORD;
    const correlationAt = at;
    at = writeIdOrNew(out, at, md.correlation_id, ids);
    at = writeNullable(out, at, md.causation_id);
    at = writeNullable(out, at, md.user_id);
    // Tenants are few and repeat from event to event, as sources do: their encoded form is kept (see writeName).
    at = md.tenant_id === null ? writeNullable(out, at, null) : writeName(out, at, md.tenant_id, names);
    at = writeName(out, at, md.source, names);
    // Only once the whole event fit: a retry in a new arena generates again.
    event.event_id ??= generatedUuid(out, idAt);
    if (generatedTime) event.timestamp = ids!.lastNow;
    md.correlation_id ??= generatedUuid(out, correlationAt);
    return at;
  } catch (err) {
    if (err === FULL) return -1;
    throw err;
  }
}

function required(ids: GeneratedFields | null): GeneratedFields {
  if (ids === null) throw new TypeError('the event has no event_id, timestamp or correlation_id to encode, and nothing to generate them');
  return ids;
}

/**
 * Names repeat from event to event (types, sources, payload keys): their
 * encoded form is kept and copied, a loop over bytes instead of one over
 * characters. Besides saving the encoding, this keeps the writer fast in a
 * process where `charCodeAt` has become slow: V8 gives up its fast path for
 * string methods once any code subclasses String (ioredis 6 does, on import),
 * and loops over characters then run several times slower. At most
 * NAME_CACHE_LIMIT names are kept at a time, per writer (see EventWriter).
 */
const NAME_CACHE_LIMIT = 4096;
const NAME_MAX_CHARS = 64;

function writeName(out: Buffer, at: number, value: string, names: Map<string, Uint8Array>): number {
  const cached = names.get(value);
  if (cached !== undefined) {
    const n = cached.length;
    need(out, at, n);
    for (let i = 0; i < n; i++) out[at + i] = cached[i]!;
    return at + n;
  }
  const end = writeString(out, at, value);
  if (value.length <= NAME_MAX_CHARS) {
    // Payload keys can be data (ids used as keys): when the names kept reach the limit, they are
    // dropped and kept again as they come, so the ones that do repeat are soon back.
    if (names.size >= NAME_CACHE_LIMIT) names.clear();
    names.set(value, Uint8Array.prototype.slice.call(out, at, end));
  }
  return end;
}

/**
 * A JSON value (validated before: plain objects, arrays, strings, finite
 * numbers, booleans, null). Numbers follow msgpackr's choices, including the
 * one that matters with records: positive integers from 0x40 to 0x7f are not
 * written as fixints, whose bytes a record-aware decoder reads as record
 * references.
 */
function writeJson(out: Buffer, at: number, value: unknown, depthLeft: number, path: string, names: Map<string, Uint8Array>): number {
  switch (typeof value) {
    case 'string':
      if (!isWellFormed(value)) throw new NotJsonError(`${path} has a lone surrogate`);
      return writeString(out, at, value);
    case 'number':
      if (!Number.isFinite(value)) throw new NotJsonError(`${path} is the number ${value}, not JSON`);
      return writeNumber(out, at, value);
    case 'bigint':
      return writeBigInt(out, at, value, path);
    case 'boolean':
      need(out, at, 1);
      out[at] = value ? 0xc3 : 0xc2;
      return at + 1;
    case 'object': {
      if (value === null) {
        need(out, at, 1);
        out[at] = NIL;
        return at + 1;
      }
      if (depthLeft <= 0) throw new NotJsonError(`${path} nests too deep`);
      if (Array.isArray(value)) {
        const n = value.length;
        at = writeLength(out, at, n, 0x90, 0xdc, 0xdd);
        for (let i = 0; i < n; i++) at = writeJson(out, at, value[i], depthLeft - 1, path, names);
        return at;
      }
      if (!isPlainObject(value)) throw new NotJsonError(`${path} holds an object that is not plain`);
      const record = value;
      // The entries are written behind a one-byte header (fixmap) and counted
      // on the way: no list of keys per object. A map of 16 entries or more
      // gets its longer header by moving the entries once.
      need(out, at, 1);
      const head = at;
      at += 1;
      let count = 0;
      for (const key in record) {
        if (!Object.hasOwn(record, key)) continue;
        // Rare: the object is written again from its start in its own form (a check per key, as before, not per object).
        if (key === '__proto__') return writeProtoKeyed(out, head, record, depthLeft, path, names);
        if (!isWellFormed(key)) throw new NotJsonError(`${path} has a key that cannot be stored`);
        at = writeName(out, at, key, names);
        at = writeJson(out, at, record[key], depthLeft - 1, path, names);
        count++;
      }
      if (count < 16) {
        out[head] = 0x80 | count;
        return at;
      }
      const extra = count < 0x10000 ? 2 : 4;
      need(out, at, extra);
      out.copyWithin(head + 1 + extra, head + 1, at);
      writeLength(out, head, count, 0x80, 0xde, 0xdf);
      return at + extra;
    }
    default:
      throw new NotJsonError(`${path} holds a ${typeof value}, not JSON`);
  }
}

// ---------------------------------------------------------------------------------------------
// Payload values beyond JSON.parse's: objects holding the key `__proto__` (bigints: writeBigInt, in msgpack-write.ts).

/** An object holding the key `__proto__`, as the extension proto-keyed.ts decodes (see there why). */
function writeProtoKeyed(
  out: Buffer,
  at: number,
  record: Record<string, unknown>,
  depthLeft: number,
  path: string,
  names: Map<string, Uint8Array>,
): number {
  const keys = Object.keys(record);
  const head = at;
  need(out, at, 6);
  at += 6; // ext32: 0xc9, 4 bytes of length, the type
  const start = at;
  at = writeLength(out, at, keys.length * 2, 0x90, 0xdc, 0xdd);
  for (const key of keys) {
    if (!isWellFormed(key)) throw new NotJsonError(`${path} has a key that cannot be stored`);
    at = writeString(out, at, key);
    at = writeJson(out, at, record[key], depthLeft - 1, path, names);
  }
  out[head] = 0xc9;
  out.writeUInt32BE(at - start, head + 1);
  out[head + 5] = PROTO_KEYED_EXT;
  return at;
}
