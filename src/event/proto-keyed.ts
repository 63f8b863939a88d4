/**
 * Payload objects holding the key `__proto__`. msgpackr renames a map key
 * `__proto__` to `__proto_` when it decodes (its guard against prototype
 * pollution), so the event writer writes such an object as an extension
 * wrapping the array [key, value, key, value, ...], decoded here into an
 * object without a prototype, where the key is data. Only such objects take
 * this form; every other stays a plain msgpack map.
 */
import { Unpackr, addExtension } from 'msgpackr';

export const PROTO_KEYED_EXT = 0x01;

// The extension's contents are plain msgpack (no records): a reader of its own, which msgpackr allows inside a read.
const protoKeyedReader = new Unpackr({ mapsAsObjects: true, useRecords: false, moreTypes: false });
addExtension({
  type: PROTO_KEYED_EXT,
  unpack(data: Uint8Array): Record<string, unknown> {
    const entries = protoKeyedReader.unpack(data) as unknown[];
    const object = Object.create(null) as Record<string, unknown>;
    for (let i = 0; i + 1 < entries.length; i += 2) object[String(entries[i])] = entries[i + 1];
    return object;
  },
});
