/**
 * The minimal batch pipeline, as the ceiling eventrail is measured against:
 * what its design does at best on this machine, without what eventrail adds
 * (validation, receipts, lanes, checkpoints, metrics, backpressure). On the
 * same inputs: event_id, timestamp and correlation_id filled by hand with no
 * validation, 1024 events packed with msgpackr (records on, as the bus's
 * codec) into a buffer of its own, one piscina task per batch with that buffer
 * transferred; the worker unpacks it and runs the same consumer modules. The
 * durable twin first stores each packed batch with one lmdb put and waits for
 * it to be on disk (the put's commit, then `flushed`: the sync lmdb-js runs
 * after a commit, as LmdbStore.append waits for) before dispatching it.
 * Batches are independent: later batches are packed while earlier ones are
 * committed or handled, as the bus overlaps them.
 */
import { pathToFileURL } from 'node:url';
import { Packr } from 'msgpackr';
import { open, type RootDatabase } from 'lmdb';
import { Piscina } from 'piscina';
import type { EventInput } from '../../src/event/event.js';
import { MainThreadCost } from '../cost.js';
import { literalEvent } from '../literal-event.js';
import type { Scenario, ScenarioHead } from '../scenario.js';

export const PIPELINE_BATCH = 1024;

export interface PipelineOptions {
  /** Consumer module paths, run in the worker on every event. */
  readonly consumers: readonly string[];
  /** An lmdb folder: the durable twin stores each packed batch before dispatching it. */
  readonly lmdbPath?: () => string;
}

export function pipelineScenario(head: ScenarioHead, inputs: readonly EventInput[], options: PipelineOptions): Scenario {
  let pool: Piscina | undefined;
  let db: RootDatabase<Buffer, number> | undefined;
  let key = 0;
  const packr = new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false });
  const cost = new MainThreadCost();
  return {
    ...head,
    events: inputs.length,
    setup() {
      pool = new Piscina({
        filename: new URL('./pipeline-worker.js', import.meta.url).href,
        minThreads: 1,
        maxThreads: 1,
        workerData: { consumers: options.consumers.map((p) => pathToFileURL(p).href) },
      });
      if (options.lmdbPath) db = open<Buffer, number>({ path: options.lmdbPath(), noSubdir: false, encoding: 'binary', cache: false });
    },
    async run() {
      const p = pool!;
      const store = db;
      await cost.measure(inputs.length, async () => {
        const tasks: Promise<unknown>[] = [];
        for (let at = 0; at < inputs.length; at += PIPELINE_BATCH) {
          const end = Math.min(inputs.length, at + PIPELINE_BATCH);
          const batch = new Array(end - at);
          for (let i = at; i < end; i++) batch[i - at] = literalEvent(inputs[i]!);
          // packr.pack returns a view of its reused buffer: copy into one this batch owns, to transfer.
          const bytes = new Uint8Array(packr.pack(batch));
          const dispatch = () => p.run(bytes, { transferList: [bytes.buffer] });
          if (store === undefined) tasks.push(dispatch());
          else {
            const stored = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
            tasks.push(
              store
                .put(++key, stored)
                .then(() => store.flushed)
                .then(dispatch),
            );
          }
        }
        await Promise.all(tasks);
      });
    },
    async teardown() {
      await pool?.destroy();
      await db?.close();
      pool = undefined;
      db = undefined;
    },
    extras: () => cost.extras(),
  };
}
