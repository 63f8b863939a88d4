/**
 * The seed translated literally, as a peer: one `piscina.run()` per event,
 * `inFlight` emits at a time, and (for the durable comparison) one lmdb
 * `put` per event before it is dispatched (./lmdb-put.ts).
 */
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import type { EventInput } from '../../src/event/event.js';
import { literalEvent } from '../literal-event.js';
import { LiteralStore } from './lmdb-put.js';
import type { Scenario, ScenarioHead } from '../scenario.js';

export interface PerEventOptions {
  /** Consumer module paths, run in the worker on every event. */
  readonly consumers: readonly string[];
  /** piscina's option; piscina's default when not given. */
  readonly concurrentTasksPerWorker?: number;
  /** Emits in flight at once (each waits for its put and its task). */
  readonly inFlight: number;
  /** An lmdb folder: store each event with one put before dispatching it. */
  readonly lmdbPath?: () => string;
}

export function perEventScenario(head: ScenarioHead, inputs: readonly EventInput[], options: PerEventOptions): Scenario {
  let pool: Piscina | undefined;
  let db: LiteralStore | undefined;
  return {
    ...head,
    events: inputs.length,
    setup() {
      pool = new Piscina({
        filename: new URL('./per-event-worker.js', import.meta.url).href,
        minThreads: 1,
        maxThreads: 1,
        ...(options.concurrentTasksPerWorker === undefined ? {} : { concurrentTasksPerWorker: options.concurrentTasksPerWorker }),
        workerData: { consumers: options.consumers.map((p) => pathToFileURL(p).href) },
      });
      if (options.lmdbPath) db = LiteralStore.open(options.lmdbPath());
    },
    async run() {
      const p = pool!;
      const store = db;
      let next = 0;
      const emitter = async () => {
        while (next < inputs.length) {
          const event = literalEvent(inputs[next++]!);
          if (store !== undefined) await store.put(event);
          await p.run(event);
        }
      };
      await Promise.all(Array.from({ length: options.inFlight }, emitter));
    },
    async teardown() {
      await pool?.destroy();
      await db?.close();
      pool = undefined;
      db = undefined;
    },
  };
}
