import { defineConsumer } from '../../src/index.js';

/** A trivial consumer: reads the event and counts it, so the bus is what is measured. */
let handled = 0;
export default defineConsumer({
  name: 'TrivialA',
  eventTypes: '*',
  handle(event) {
    if (event.metadata.source.length > 0) handled++;
  },
});
export const count = () => handled;
