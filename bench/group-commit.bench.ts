/** Store suite of `eventrail bench`: LmdbStore group commit (1024 per transaction) vs one commit per event vs lmdb-js put per event. (bench/store.bench.ts: the lmdb store's appends and reads alone.) */
import { runEntry } from './entry.js';

await runEntry('store');
