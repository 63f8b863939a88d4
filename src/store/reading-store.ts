/**
 * What both backends share of their reads: each keeps its reads in a reader
 * of its own (lmdb-reads.ts, fdb-reads.ts) and hands every read method of the
 * store contract to it. This base class is that handing-over, written once.
 */
import type {
  AuditQuery,
  CursorRecord,
  DeadLetterQuery,
  DeadLetterRecord,
  LeaseRecord,
  Position,
  ReadEventsQuery,
  StoreStats,
  StoredAuditEntry,
  StoredEvent,
} from './store.js';

/** The read half of the store contract, as a backend's reader implements it. */
export interface StoreReader {
  lookup(eventId: string): Promise<Position | null>;
  readEvents(query?: ReadEventsQuery): AsyncGenerator<StoredEvent>;
  readAudit(query?: AuditQuery): AsyncGenerator<StoredAuditEntry>;
  readDeadLetters(query?: DeadLetterQuery): AsyncGenerator<DeadLetterRecord>;
  readCursors(): Promise<CursorRecord[]>;
  readLeases(): Promise<LeaseRecord[]>;
  stats(): Promise<StoreStats>;
}

export abstract class ReadingStore implements StoreReader {
  /** The backend's reader, set by its constructor. */
  protected abstract readonly reader: StoreReader;

  lookup(eventId: string): Promise<Position | null> {
    return this.reader.lookup(eventId);
  }

  readEvents(query?: ReadEventsQuery): AsyncGenerator<StoredEvent> {
    return this.reader.readEvents(query);
  }

  readAudit(query?: AuditQuery): AsyncGenerator<StoredAuditEntry> {
    return this.reader.readAudit(query);
  }

  readDeadLetters(query?: DeadLetterQuery): AsyncGenerator<DeadLetterRecord> {
    return this.reader.readDeadLetters(query);
  }

  readCursors(): Promise<CursorRecord[]> {
    return this.reader.readCursors();
  }

  readLeases(): Promise<LeaseRecord[]> {
    return this.reader.readLeases();
  }

  stats(): Promise<StoreStats> {
    return this.reader.stats();
  }
}
