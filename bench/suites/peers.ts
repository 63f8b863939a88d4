/**
 * Peers: BullMQ on a local redis-server (started and stopped here, skipped
 * with the reason when redis-server or the optional packages are missing),
 * against durable eventrail measured beside it. The same two trivial
 * consumers run everywhere.
 */
import { TRIVIAL_CONSUMERS } from '../../src/cli/sweep/consumers/paths.js';
import { eventrailScenario } from '../eventrail.js';
import { bullmqScenario } from '../peers/bullmq.js';
import type { Suite, SuiteContext } from '../scenario.js';
import { PER_EVENT_IN_FLIGHT, perEventInputs } from './dispatch.js';

/** BullMQ's Worker concurrency: well past where more stops helping for handlers this short. */
const BULLMQ_CONCURRENCY = 32;
const BULK = 1024;

export function peersSuite(ctx: SuiteContext, bullmqMissing: string | null): Suite {
  const consumers = TRIVIAL_CONSUMERS;
  return {
    scenarios: [
      eventrailScenario(
        { id: 'peers.eventrail', suite: 'peers', name: 'eventrail, lmdb, 1 thread', role: 'eventrail' },
        ctx.inputs,
        () => ({
          store: { kind: 'lmdb', path: ctx.folder('peers') },
          consumers: [...consumers],
          pool: { maxThreads: 1, minThreads: 1 },
        }),
      ),
      bullmqScenario(
        {
          id: 'peers.bullmq-add',
          suite: 'peers',
          name: `BullMQ, queue.add() per event (${PER_EVENT_IN_FLIGHT} in flight), concurrency ${BULLMQ_CONCURRENCY}`,
          role: 'peer',
        },
        perEventInputs(ctx),
        { consumers, concurrency: BULLMQ_CONCURRENCY, producer: { kind: 'add', inFlight: PER_EVENT_IN_FLIGHT } },
        bullmqMissing,
      ),
      bullmqScenario(
        {
          id: 'peers.bullmq-bulk',
          suite: 'peers',
          name: `BullMQ, queue.addBulk() of ${BULK}, concurrency ${BULLMQ_CONCURRENCY}`,
          role: 'peer',
        },
        perEventInputs(ctx),
        { consumers, concurrency: BULLMQ_CONCURRENCY, producer: { kind: 'bulk', bulkSize: BULK } },
        bullmqMissing,
      ),
    ],
    ratios: [
      { name: 'durable eventrail / BullMQ, add per event', of: 'peers.eventrail', to: 'peers.bullmq-add' },
      { name: 'durable eventrail / BullMQ, addBulk', of: 'peers.eventrail', to: 'peers.bullmq-bulk' },
    ],
  };
}
