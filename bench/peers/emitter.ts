/**
 * node's EventEmitter in process, as a peer: each consumer subscribed as a
 * listener, no worker, no validation, no store. Handlers that return a promise
 * are awaited at the end of the iteration.
 */
import { EventEmitter } from 'node:events';
import { pathToFileURL } from 'node:url';
import type { ConsumerContext } from '../../src/consumer.js';
import { eventTypeKey, type Event, type EventInput } from '../../src/event/event.js';
import { literalEvent } from '../literal-event.js';
import type { Scenario, ScenarioHead } from '../scenario.js';
import { loadConsumers } from './run-consumers.js';

export function emitterScenario(head: ScenarioHead, inputs: readonly EventInput[], consumers: readonly string[]): Scenario {
  const emitter = new EventEmitter();
  let pending: Promise<void>[] = [];
  return {
    ...head,
    events: inputs.length,
    async setup() {
      for (const c of await loadConsumers(consumers.map((p) => pathToFileURL(p).href))) {
        const ctx: ConsumerContext = {
          consumer: c.name,
          attempt: 1,
          options: {},
          signal: new AbortController().signal,
          metrics: { increment() {}, observe() {} },
          emit() {},
        };
        const types = c.eventTypes === '*' ? null : new Set(c.eventTypes.map(eventTypeKey));
        emitter.on('event', (event: Event) => {
          if (types !== null && !types.has(eventTypeKey(event.event_type))) return;
          const done = c.handle(event, ctx);
          if (done !== undefined) pending.push(done);
        });
      }
    },
    async run() {
      for (const input of inputs) emitter.emit('event', literalEvent(input));
      const handled = pending;
      pending = [];
      await Promise.all(handled);
    },
    teardown() {
      emitter.removeAllListeners();
    },
  };
}
