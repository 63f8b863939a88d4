/** Dispatch (store none, two trivial consumers, one worker): eventrail vs one piscina.run() per event (defaults, and concurrentTasksPerWorker 16) vs EventEmitter. Targets: ≥ 10× and ≥ 3× the per-event peers. */
import { runEntry } from './entry.js';

await runEntry('dispatch');
