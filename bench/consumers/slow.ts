import { defineConsumer } from '../../src/index.js';

/** A slow consumer: about BENCH_SLOW_US microseconds (default 5) of CPU per event (not an EVENTRAIL_ name: those are options). */
const micros = Number(process.env.BENCH_SLOW_US ?? 5);
export default defineConsumer({
  name: 'SlowConsumer',
  eventTypes: '*',
  handle() {
    const until = performance.now() + micros / 1000;
    while (performance.now() < until);
  },
});
