import { BroadcastChannel } from 'node:worker_threads';
import { defineConsumer } from '../../src/index.js';

/**
 * The soak test's consumer: fails every event whose seq is a multiple of 100
 * (1 %), handles the rest, and tells the main thread which seqs it handled
 * over a BroadcastChannel, batched per turn so the report costs little.
 */
const channel = new BroadcastChannel('eventrail-soak');
channel.unref();
let handled: number[] = [];
let scheduled = false;
const flush = () => {
  scheduled = false;
  const seqs = handled;
  handled = [];
  channel.postMessage(seqs);
};

export default defineConsumer({
  name: 'Soak',
  eventTypes: '*',
  handle(event) {
    const seq = (event.payload as { seq: number }).seq;
    if (seq % 100 === 0) throw new Error(`soak: seq ${seq} always fails`);
    handled.push(seq);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  },
});
