/**
 * The literal design's store, as a peer: lmdb-js with its defaults (values
 * encoded as msgpack on the main thread), one `put` per event keyed by
 * event_id. Besides src/store/lmdb.ts this is the only file that imports lmdb.
 */
import { open, type RootDatabase } from 'lmdb';
import type { Event } from '../../src/event/event.js';

export class LiteralStore {
  readonly #db: RootDatabase;

  private constructor(db: RootDatabase) {
    this.#db = db;
  }

  static open(path: string): LiteralStore {
    return new LiteralStore(open({ path, noSubdir: false }));
  }

  /** Resolves once the event is on disk: a put resolves at commit and the fsync follows, so wait for that too. */
  async put(event: Event): Promise<void> {
    await this.#db.put(event.event_id, event);
    await this.#db.flushed;
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}
