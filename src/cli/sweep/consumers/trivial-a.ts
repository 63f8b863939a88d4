import { defineConsumer } from '../../../index.js';

/** A trivial consumer: reads the event and counts it, so what is measured is the bus. */
let handled = 0;
export default defineConsumer({
  name: 'TrivialA',
  eventTypes: '*',
  handle(event) {
    if (event.metadata.source.length > 0) handled++;
  },
});
export const count = (): number => handled;
