/**
 * How the peers run eventrail consumer modules on one event: every consumer
 * subscribed to its type, with a context that does nothing (the peers have no
 * metrics aggregation or follow-ups, which only makes them cheaper).
 */
import type { Consumer, ConsumerContext } from '../../src/consumer.js';
import { eventTypeKey, type Event } from '../../src/event/event.js';

const contexts = new Map<string, ConsumerContext>();
const neverAborted = new AbortController().signal;

function contextOf(consumer: string): ConsumerContext {
  let ctx = contexts.get(consumer);
  if (ctx === undefined) {
    ctx = { consumer, attempt: 1, options: {}, signal: neverAborted, metrics: { increment() {}, observe() {} }, emit() {} };
    contexts.set(consumer, ctx);
  }
  return ctx;
}

/** Runs every matching consumer; resolves with how many ran. */
export async function runConsumers(consumers: readonly Consumer[], event: Event): Promise<number> {
  const key = eventTypeKey(event.event_type);
  let ran = 0;
  for (const c of consumers) {
    if (c.eventTypes === '*' || c.eventTypes.some((t) => eventTypeKey(t) === key)) {
      ran++;
      await c.handle(event, contextOf(c.name));
    }
  }
  return ran;
}

export async function loadConsumers(urls: readonly string[]): Promise<Consumer[]> {
  return Promise.all(urls.map(async (u) => ((await import(u)) as { default: Consumer }).default));
}

/** runConsumers without a promise per event when every handler is synchronous: how many ran, or a promise of it. */
export function runConsumersOn(consumers: readonly Consumer[], event: Event): number | Promise<number> {
  const key = eventTypeKey(event.event_type);
  let ran = 0;
  for (let i = 0; i < consumers.length; i++) {
    const c = consumers[i]!;
    if (c.eventTypes !== '*' && !c.eventTypes.some((t) => eventTypeKey(t) === key)) continue;
    ran++;
    const done = c.handle(event, contextOf(c.name));
    if (done instanceof Promise) return finishAsync(consumers, event, i, done, ran);
  }
  return ran;
}

async function finishAsync(
  consumers: readonly Consumer[],
  event: Event,
  from: number,
  pending: Promise<void>,
  ran: number,
): Promise<number> {
  await pending;
  const key = eventTypeKey(event.event_type);
  for (let i = from + 1; i < consumers.length; i++) {
    const c = consumers[i]!;
    if (c.eventTypes !== '*' && !c.eventTypes.some((t) => eventTypeKey(t) === key)) continue;
    ran++;
    await c.handle(event, contextOf(c.name));
  }
  return ran;
}
