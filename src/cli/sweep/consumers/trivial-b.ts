import { defineConsumer } from '../../../index.js';

/** A second trivial consumer, subscribed by type (the bench's events are UserLoggedIn: both consumers run for each). */
let logins = 0;
export default defineConsumer({
  name: 'TrivialB',
  eventTypes: ['UserLoggedIn', 'SessionExpired'],
  handle(event) {
    if (event.event_type === 'UserLoggedIn') logins++;
  },
});
export const count = (): number => logins;
