import { defineConsumer } from '../../src/index.js';

/** A second trivial consumer, subscribed by type. */
let logins = 0;
export default defineConsumer({
  name: 'TrivialB',
  eventTypes: ['UserLoggedIn', 'SessionExpired'],
  handle(event) {
    if (event.event_type === 'UserLoggedIn') logins++;
  },
});
export const count = () => logins;
