import { defineConsumer } from '../../src/index.js';

/** A slow consumer: about BENCH_SLOW_US microseconds (default 5) of CPU per event. */
const us = Number(process.env.BENCH_SLOW_US ?? 5);
export default defineConsumer({
  name: 'SlowConsumer',
  eventTypes: '*',
  handle() {
    const until = performance.now() + us / 1000;
    while (performance.now() < until);
  },
});
