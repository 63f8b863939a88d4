/** Store suite of `eventrail bench`: LmdbStore group commit (1024 per transaction) vs one commit per event vs lmdb-js put per event. (bench/lmdb-store.bench.ts, not a suite: the lmdb store's appends and reads alone.) */
import { runEntry } from './entry.js';

await runEntry('store');
