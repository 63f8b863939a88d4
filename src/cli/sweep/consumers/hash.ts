import { createHash } from 'node:crypto';
import { defineConsumer } from '../../../index.js';

/**
 * A consumer that does real CPU work: it serialises the payload and hashes it
 * BENCH_HASH_ROUNDS times (default 20; not an EVENTRAIL_ name: those are
 * options) with SHA-256, chaining each digest into the next, so the work
 * cannot be skipped. About 10-20 µs per event on a current core: the worker's
 * cost per event is then well above the main thread's, which is when more
 * pool threads pay.
 */
const rounds = Math.max(1, Number(process.env.BENCH_HASH_ROUNDS ?? 20) || 20);
let last = '';
export default defineConsumer({
  name: 'HashConsumer',
  eventTypes: '*',
  handle(event) {
    let digest: Buffer = Buffer.from(JSON.stringify(event.payload));
    for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).update(event.event_id).digest();
    last = digest.toString('hex', 0, 4);
  },
});
export const lastDigest = (): string => last;
