/**
 * Dead letter values. Their keys are in keys.ts; a value over MAX_VALUE_BYTES
 * is chunked like a block.
 */
import type { Codec } from '../../codec.js';
import { StoreCorruptError, type SerializedError } from '../../errors.js';
import type { CorruptHandler, DeadLetterRecord, Position } from '../store.js';
import type { DeadLetterId, Gathered } from './chunks.js';

// The record in the codec's shared dead-letter structure (event, consumer,
// error, attempts, failed_at), then the tenant id as a second msgpack value:
// the shared structure stays as it is and the tenant costs a few bytes rather
// than an in-band structure definition. The key holds consumer and position.

interface StoredDeadLetter {
  event: Uint8Array;
  consumer: string;
  error: SerializedError;
  attempts: number;
  failed_at: string;
}

export function encodeDeadLetter(codec: Codec, record: DeadLetterRecord): Buffer {
  const { code, name, message, stack } = record.error;
  // Exactly the shared structures' keys, in order, so no structure is written in-band.
  const stored: StoredDeadLetter = {
    event: record.event,
    consumer: record.consumer,
    error: { code, name, message, stack },
    attempts: record.attempts,
    failed_at: record.failedAt,
  };
  return Buffer.concat([codec.encode(stored), codec.encode(record.tenantId)]);
}

/**
 * Decodes gathered dead letters, keeping those of `query.tenantId` (all when
 * absent). One that cannot be decoded goes to `query.onCorrupt` and is
 * skipped; without a handler it is thrown.
 */
export function* decodeDeadLetters(
  codec: Codec,
  letters: readonly Gathered<DeadLetterId>[],
  query: { readonly tenantId?: string | undefined; readonly onCorrupt?: CorruptHandler | undefined },
): Generator<DeadLetterRecord> {
  for (const letter of letters) {
    let record: DeadLetterRecord;
    try {
      if (letter.corrupt) throw letter.corrupt;
      record = decodeDeadLetter(codec, letter.id, letter.value);
    } catch (err) {
      const error =
        err instanceof StoreCorruptError
          ? err
          : new StoreCorruptError(`dead letter ${letter.id.consumer}/${letter.id.position.toString('hex')}: ${String(err)}`, err);
      if (query.onCorrupt === undefined) throw error;
      query.onCorrupt(error);
      continue;
    }
    if (query.tenantId === undefined || record.tenantId === query.tenantId) yield record;
  }
}

export function decodeDeadLetter(codec: Codec, key: { consumer: string; position: Position }, value: Buffer): DeadLetterRecord {
  let stored: StoredDeadLetter | undefined;
  let tenantId: unknown;
  try {
    [stored, tenantId] = codec.decodeMany<unknown>(value) as [StoredDeadLetter, unknown];
  } catch (err) {
    throw new StoreCorruptError(`dead letter ${key.consumer}/${key.position.toString('hex')} does not decode`, err);
  }
  if (
    !stored ||
    typeof stored !== 'object' ||
    !(stored.event instanceof Uint8Array) ||
    typeof stored.error !== 'object' ||
    stored.error === null ||
    (tenantId !== null && typeof tenantId !== 'string')
  ) {
    throw new StoreCorruptError(`dead letter ${key.consumer}/${key.position.toString('hex')} is malformed`);
  }
  const error: SerializedError = { code: stored.error.code, name: stored.error.name, message: stored.error.message };
  if (stored.error.stack !== undefined) error.stack = stored.error.stack;
  return {
    consumer: key.consumer,
    position: key.position,
    event: Buffer.from(stored.event.buffer, stored.event.byteOffset, stored.event.byteLength),
    error,
    attempts: stored.attempts,
    failedAt: stored.failed_at,
    tenantId,
  };
}
