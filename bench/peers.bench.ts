/** Peers: BullMQ on a redis-server started on a free loopback port (skipped with the reason when not installed) vs durable eventrail. */
import { runEntry } from './entry.js';

await runEntry('peers');
