/** eventrail as a scenario: emit every input (not awaiting each), then flush (every consumer has handled every event). */
import { createBus, type EventBus } from '../src/bus/bus.js';
import type { EventInput } from '../src/event/event.js';
import type { BusOptions } from '../src/options.js';
import { MainThreadCost } from './cost.js';
import type { Scenario, ScenarioHead } from './scenario.js';

export function eventrailScenario(head: ScenarioHead, inputs: readonly EventInput[], options: () => BusOptions): Scenario {
  let bus: EventBus | undefined;
  let failure: unknown = null;
  const cost = new MainThreadCost();
  const fail = (err: unknown) => {
    failure ??= err;
  };
  return {
    ...head,
    events: inputs.length,
    async setup() {
      bus = await createBus(options());
    },
    async run() {
      const b = bus!;
      await cost.measure(inputs.length, async () => {
        for (const input of inputs) b.emit(input).then(undefined, fail);
        await b.flush();
      });
      if (failure !== null) throw failure;
    },
    async teardown() {
      await bus?.close();
      bus = undefined;
    },
    extras: () => cost.extras(),
  };
}
