/** Sweep: pool threads × batch size × lanes on the two trivial consumers (durable, lmdb). For your own consumers use `eventrail bench --config FILE`. */
import { runEntry } from './entry.js';

await runEntry('sweep');
