/**
 * What is stored beside an event, outside its serde-shaped fields: the
 * payload's catalogue version and the W3C trace context of the emit.
 *
 * An event that has neither is stored exactly as before (the event record
 * alone). One that has either is stored as a msgpack extension wrapped around
 * the unchanged event record:
 *
 *     d4 45 00        fixext 1, type 0x45 ('E'), a filler byte (msgpackr's
 *                     "read" form: the extension's data is the next value)
 *     92              an array of two:
 *     <envelope map>    { v?: uint32, tp?: traceparent, ts?: tracestate }
 *     <event record>    the event, byte for byte as the event writer wrote it
 *
 * Decoding such bytes with the shared codec gives the Event, as for any
 * other stored event, with the envelope held in a non-enumerable symbol
 * property: JSON.stringify, Object.keys and deepStrictEqual never see it, so
 * the event's JSON stays serde-exact. The extension is registered with
 * msgpackr once, when this module is first imported (codec.ts imports it, so
 * every decoder has it: bus, workers, CLI).
 */
import { addExtension } from 'msgpackr';
import type { Event } from './event.js';

export interface Envelope {
  /** The payload's catalogue version when it was emitted; absent means 1. */
  readonly v?: number;
  /** W3C traceparent of the context `emit` ran in. */
  readonly tp?: string;
  /** W3C tracestate that went with it. */
  readonly ts?: string;
}

/** msgpack extension type of an enveloped event. Stored bytes depend on it: never change it. */
export const ENVELOPE_EXT = 0x45;

const ENVELOPE: unique symbol = Symbol('eventrail.envelope');

/** What is stored beside a decoded event, or undefined when nothing is. */
export function envelopeOf(event: Event): Envelope | undefined {
  return (event as { [ENVELOPE]?: Envelope })[ENVELOPE];
}

/** The catalogue version an event was stored with (1 when none was stored). */
export function storedVersion(event: Event): number {
  return envelopeOf(event)?.v ?? 1;
}

function isEnvelope(value: unknown): value is Envelope {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const e = value as Record<string, unknown>;
  return (
    (e.v === undefined || (typeof e.v === 'number' && Number.isInteger(e.v) && e.v >= 1)) &&
    (e.tp === undefined || typeof e.tp === 'string') &&
    (e.ts === undefined || typeof e.ts === 'string')
  );
}

addExtension({
  type: ENVELOPE_EXT,
  // Anything but [envelope, object] is handed on as it is: the readers' own checks report it as not an event.
  read(data: unknown): unknown {
    if (!Array.isArray(data) || data.length !== 2) return data;
    const [envelope, event] = data as [unknown, unknown];
    if (!isEnvelope(envelope) || event === null || typeof event !== 'object' || Array.isArray(event)) return data;
    Object.defineProperty(event, ENVELOPE, { value: envelope, enumerable: false });
    return event;
  },
} as unknown as Parameters<typeof addExtension>[0]);

/** Tracestate is at most 512 characters (W3C); a longer one is not stored. */
const MAX_TRACESTATE = 512;

/**
 * The stored form of an event with its envelope: a new buffer holding the
 * header, the envelope and bytes `start` to `end` of `source` (the event as
 * the event writer wrote it). Only events that carry an envelope pay for it.
 */
export function wrapEnvelope(source: Buffer, start: number, end: number, envelope: Envelope): Buffer {
  const tp = envelope.tp;
  const ts = envelope.ts !== undefined && envelope.ts.length > 0 && envelope.ts.length <= MAX_TRACESTATE ? envelope.ts : undefined;
  const v = envelope.v !== undefined && envelope.v > 1 ? envelope.v : undefined;
  const entries = (v === undefined ? 0 : 1) + (tp === undefined ? 0 : 1) + (ts === undefined ? 0 : 1);
  const size =
    4 +
    1 +
    (v === undefined ? 0 : 2 + 5) +
    (tp === undefined ? 0 : 3 + 3 + Buffer.byteLength(tp)) +
    (ts === undefined ? 0 : 3 + 3 + Buffer.byteLength(ts));
  const out = Buffer.allocUnsafe(size + (end - start));
  let at = 0;
  out[at++] = 0xd4;
  out[at++] = ENVELOPE_EXT;
  out[at++] = 0;
  out[at++] = 0x92;
  out[at++] = 0x80 | entries;
  if (v !== undefined) {
    at = writeKey(out, at, 'v');
    // Always uint32, never a fixint: a record-aware decoder reads 0x40-0x7f as record references.
    out[at++] = 0xce;
    at = out.writeUInt32BE(v, at);
  }
  if (tp !== undefined) {
    at = writeKey(out, at, 'tp');
    at = writeStr(out, at, tp);
  }
  if (ts !== undefined) {
    at = writeKey(out, at, 'ts');
    at = writeStr(out, at, ts);
  }
  at += source.copy(out, at, start, end);
  return out.subarray(0, at);
}

function writeKey(out: Buffer, at: number, key: string): number {
  out[at++] = 0xa0 | key.length;
  return at + out.write(key, at, 'latin1');
}

/** str16 always: the writer's size estimate above counts 3 header bytes. */
function writeStr(out: Buffer, at: number, value: string): number {
  const n = out.write(value, at + 3, 'utf8');
  out[at] = 0xda;
  out.writeUInt16BE(n, at + 1);
  return at + 3 + n;
}
