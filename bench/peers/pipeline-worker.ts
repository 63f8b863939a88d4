/**
 * The minimal batch pipeline's worker (see pipeline.ts): unpacks a batch and
 * runs every subscribed consumer on each event, awaiting only handlers that
 * return a promise.
 */
import { workerData } from 'node:worker_threads';
import { Unpackr } from 'msgpackr';
import type { Consumer } from '../../src/consumer.js';
import type { Event } from '../../src/event/event.js';
import { loadConsumers, runConsumersOn } from './run-consumers.js';

const { consumers: urls } = workerData as { consumers: string[] };
const unpackr = new Unpackr({ useRecords: true, mapsAsObjects: true, moreTypes: false });
let loaded: Promise<Consumer[]> | undefined;

export default async function handleBatch(bytes: Uint8Array): Promise<number> {
  const consumers = await (loaded ??= loadConsumers(urls));
  const events = unpackr.unpack(bytes) as Event[];
  let ran = 0;
  for (const event of events) {
    const done = runConsumersOn(consumers, event);
    if (typeof done === 'number') ran += done;
    else ran += await done;
  }
  return ran;
}
