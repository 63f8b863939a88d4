/** Durable end to end (emit → lmdb commit → two trivial consumers): eventrail vs the literal design (put + piscina.run() per event, 512 in flight) vs store none. Targets: ≥ 10×, ≥ 3× and ≥ 0.4×. */
import { runEntry } from './entry.js';

await runEntry('durable');
