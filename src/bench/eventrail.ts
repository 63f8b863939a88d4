/** eventrail as a scenario: emit every input (not awaiting each), then flush (every consumer has handled every event). */
import { createBus, type EventBus } from '../bus/bus.js';
import type { EventInput } from '../event/event.js';
import type { BusOptions } from '../options.js';
import type { Scenario, ScenarioHead } from './scenario.js';

export function eventrailScenario(head: ScenarioHead, inputs: readonly EventInput[], options: () => BusOptions): Scenario {
  let bus: EventBus | undefined;
  let failure: unknown = null;
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
      for (const input of inputs) b.emit(input).then(undefined, fail);
      await b.flush();
      if (failure !== null) throw failure;
    },
    async teardown() {
      await bus?.close();
      bus = undefined;
    },
  };
}
