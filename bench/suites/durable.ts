/**
 * Durable end to end (the durability issue's figures): emit → lmdb commit →
 * two trivial consumers in one worker, against the seed translated literally
 * (one lmdb put and one `piscina.run()` per event, 512 emits in flight) with
 * piscina's defaults and with `concurrentTasksPerWorker: 16`, and against the
 * same bus with store `none`, measured again here so that the ratio compares
 * neighbours in time on a machine whose load drifts; and against the durable
 * minimal batch pipeline (one lmdb put of each packed batch, on disk before
 * it is dispatched: peers/pipeline.ts).
 */
import { TRIVIAL_CONSUMERS } from '../../src/cli/sweep/consumers/paths.js';
import { eventrailScenario } from '../eventrail.js';
import { perEventScenario } from '../peers/per-event.js';
import { PIPELINE_BATCH, pipelineScenario } from '../peers/pipeline.js';
import type { Suite, SuiteContext } from '../scenario.js';
import { PER_EVENT_IN_FLIGHT, perEventInputs } from './dispatch.js';

export function durableSuite(ctx: SuiteContext): Suite {
  const consumers = TRIVIAL_CONSUMERS;
  return {
    scenarios: [
      eventrailScenario(
        { id: 'durable.eventrail', suite: 'durable', name: 'eventrail, lmdb, 1 thread', role: 'eventrail' },
        ctx.inputs,
        () => ({
          store: { kind: 'lmdb', path: ctx.folder('durable') },
          consumers: [...consumers],
          pool: { maxThreads: 1, minThreads: 1 },
        }),
      ),
      eventrailScenario(
        { id: 'durable.eventrail-none', suite: 'durable', name: 'eventrail, store none, 1 thread', role: 'eventrail' },
        ctx.inputs,
        () => ({
          store: { kind: 'none' },
          consumers: [...consumers],
          pool: { maxThreads: 1, minThreads: 1 },
        }),
      ),
      pipelineScenario(
        {
          id: 'durable.pipeline',
          suite: 'durable',
          name: `minimal batch pipeline, one lmdb put per ${PIPELINE_BATCH}-event batch, on disk before dispatch`,
          role: 'peer',
        },
        ctx.inputs,
        { consumers, lmdbPath: () => ctx.folder('pipeline') },
      ),
      perEventScenario(
        { id: 'durable.literal', suite: 'durable', name: 'lmdb put + piscina.run() per event, defaults', role: 'peer' },
        perEventInputs(ctx),
        { consumers, inFlight: PER_EVENT_IN_FLIGHT, lmdbPath: () => ctx.folder('literal') },
      ),
      perEventScenario(
        {
          id: 'durable.literal-tuned',
          suite: 'durable',
          name: 'lmdb put + piscina.run() per event, concurrentTasksPerWorker 16',
          role: 'peer',
        },
        perEventInputs(ctx),
        { consumers, inFlight: PER_EVENT_IN_FLIGHT, concurrentTasksPerWorker: 16, lmdbPath: () => ctx.folder('literal') },
      ),
    ],
    ratios: [
      { name: 'durable eventrail / literal design (defaults)', of: 'durable.eventrail', to: 'durable.literal', target: 10 },
      {
        name: 'durable eventrail / literal design (concurrentTasksPerWorker 16)',
        of: 'durable.eventrail',
        to: 'durable.literal-tuned',
        target: 4,
      },
      { name: 'eventrail / minimal pipeline (durable)', of: 'durable.eventrail', to: 'durable.pipeline', target: 0.45 },
      { name: 'durable eventrail / eventrail with store none', of: 'durable.eventrail', to: 'durable.eventrail-none', target: 0.5 },
    ],
  };
}
