/**
 * Which partition of the shared log an event belongs to. The partition count
 * is fixed when a store is created and recorded in it; every instance maps an
 * event the same way, from its partition key (`dispatch.partitionBy`, which
 * instances sharing a store must agree on) or, for an event without one, from
 * its event_id. Lanes inside an instance use the same hash.
 */

/**
 * A key's hash. Keys are usually validated uuids, whose last eight hex digits
 * are random in v4 and v7 ids and count up in hand-made ones: either way they
 * spread, read as a number without a loop over characters (see writeName in
 * event-writer.ts for why such loops are avoided on the hot path). Anything
 * else is hashed (FNV-1a).
 */
export function hashKey(key: string): number {
  if (key.length === 36) {
    const n = Number.parseInt(key.slice(28), 16);
    if (n === n) return n;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The partition (0 to partitions - 1) of an event with this partition key (null: none) and id. */
export function partitionOf(partitionKey: string | null, eventId: string, partitions: number): number {
  return hashKey(partitionKey ?? eventId) % partitions;
}
