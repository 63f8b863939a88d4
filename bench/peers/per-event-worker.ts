/**
 * The seed's design translated literally, as a peer: one piscina task per
 * event, running the same consumer modules (loaded once per worker) on the
 * structured-cloned event.
 */
import { workerData } from 'node:worker_threads';
import type { Consumer } from '../../src/consumer.js';
import type { Event } from '../../src/event/event.js';
import { loadConsumers, runConsumers } from './run-consumers.js';

const { consumers: urls } = workerData as { consumers: string[] };
let loaded: Promise<Consumer[]> | undefined;

export default async function handle(event: Event): Promise<number> {
  loaded ??= loadConsumers(urls);
  return runConsumers(await loaded, event);
}
