/**
 * Dispatch (the core issue's figures): store `none`, two trivial consumers in
 * one worker. eventrail (validated, batched, one transferred buffer per batch)
 * against the seed's shape translated literally (one `piscina.run()` per
 * event, 512 in flight) with piscina's defaults and at its best for that
 * pattern (`concurrentTasksPerWorker: 16`), and against node's EventEmitter
 * in process; and against the minimal batch pipeline (peers/pipeline.ts),
 * the ceiling of eventrail's own design on this machine.
 */
import { TRIVIAL_CONSUMERS } from '../../src/cli/sweep/consumers/paths.js';
import { eventrailScenario } from '../eventrail.js';
import { emitterScenario } from '../peers/emitter.js';
import { perEventScenario } from '../peers/per-event.js';
import { PIPELINE_BATCH, pipelineScenario } from '../peers/pipeline.js';
import type { Suite, SuiteContext } from '../scenario.js';

/** Emits in flight for the per-event peers. */
export const PER_EVENT_IN_FLIGHT = 512;

/** The per-event peers move ~1/10 the events per iteration: they are that much slower, and the rate is per event. */
export const perEventInputs = (ctx: SuiteContext) =>
  ctx.inputs.slice(0, Math.max(ctx.quick ? 250 : 1000, Math.floor(ctx.inputs.length / 10)));

export function dispatchSuite(ctx: SuiteContext): Suite {
  const consumers = TRIVIAL_CONSUMERS;
  return {
    scenarios: [
      eventrailScenario(
        { id: 'dispatch.eventrail', suite: 'dispatch', name: 'eventrail, store none, 1 thread', role: 'eventrail' },
        ctx.inputs,
        () => ({
          store: { kind: 'none' },
          consumers: [...consumers],
          pool: { maxThreads: 1, minThreads: 1 },
        }),
      ),
      perEventScenario(
        { id: 'dispatch.per-event', suite: 'dispatch', name: 'piscina.run() per event, defaults', role: 'peer' },
        perEventInputs(ctx),
        {
          consumers,
          inFlight: PER_EVENT_IN_FLIGHT,
        },
      ),
      perEventScenario(
        { id: 'dispatch.per-event-tuned', suite: 'dispatch', name: 'piscina.run() per event, concurrentTasksPerWorker 16', role: 'peer' },
        perEventInputs(ctx),
        { consumers, inFlight: PER_EVENT_IN_FLIGHT, concurrentTasksPerWorker: 16 },
      ),
      pipelineScenario(
        {
          id: 'dispatch.pipeline',
          suite: 'dispatch',
          name: `minimal batch pipeline (${PIPELINE_BATCH} per packed task, no validation), store none`,
          role: 'peer',
        },
        ctx.inputs,
        { consumers },
      ),
      emitterScenario(
        { id: 'dispatch.emitter', suite: 'dispatch', name: 'EventEmitter in process (no worker, no validation)', role: 'peer' },
        ctx.inputs,
        consumers,
      ),
    ],
    ratios: [
      { name: 'eventrail / piscina per event (defaults)', of: 'dispatch.eventrail', to: 'dispatch.per-event', target: 10 },
      {
        name: 'eventrail / piscina per event (concurrentTasksPerWorker 16)',
        of: 'dispatch.eventrail',
        to: 'dispatch.per-event-tuned',
        target: 4,
      },
      { name: 'eventrail / minimal pipeline (store none)', of: 'dispatch.eventrail', to: 'dispatch.pipeline', target: 0.6 },
      { name: 'eventrail / EventEmitter in process', of: 'dispatch.eventrail', to: 'dispatch.emitter' },
    ],
  };
}
