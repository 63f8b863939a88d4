/**
 * The seed's design translated literally, as a peer: one piscina task per
 * event, running the same consumer modules (loaded once per worker) on the
 * structured-cloned event.
 */
import { workerData } from 'node:worker_threads';
import type { Consumer, ConsumerContext, Event } from '../../src/index.js';

const { consumers: urls } = workerData as { consumers: string[] };
let loaded: Promise<Consumer[]> | undefined;

const ctx = (consumer: string): ConsumerContext => ({
  consumer,
  attempt: 1,
  signal: new AbortController().signal,
  metrics: { increment() {}, observe() {} },
  emit() {},
});

export default async function handle(event: Event): Promise<number> {
  loaded ??= Promise.all(urls.map(async (u) => ((await import(u)) as { default: Consumer }).default));
  const consumers = await loaded;
  const type = typeof event.event_type === 'string' ? event.event_type : null;
  let ran = 0;
  await Promise.all(
    consumers.map(async (c) => {
      if (c.eventTypes === '*' || (type !== null && (c.eventTypes as readonly unknown[]).includes(type))) {
        ran++;
        await c.handle(event, ctx(c.name));
      }
    }),
  );
  return ran;
}
