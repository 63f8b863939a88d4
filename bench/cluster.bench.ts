/** Three instance processes on one lmdb store, two consumer groups: events/s per group (against one instance) and the takeover time after a SIGKILL. */
import { runEntry } from './entry.js';

await runEntry('cluster');
