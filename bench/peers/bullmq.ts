/**
 * BullMQ on a local redis-server, as a peer: the same consumer modules run
 * by a BullMQ Worker in this process (BullMQ's default and fastest mode),
 * jobs added per event (`queue.add`, `inFlight` at a time, the literal shape)
 * or in bulk (`queue.addBulk`, BullMQ at its best). Redis keeps no
 * persistence here, so BullMQ is not durable in this comparison.
 */
import { pathToFileURL } from 'node:url';
import type { Consumer } from '../../src/consumer.js';
import type { Event, EventInput } from '../../src/event/event.js';
import { literalEvent } from '../literal-event.js';
import type { Planned, ScenarioHead } from '../scenario.js';
import { redisServerMissing, startRedisServer, type RedisServer } from './redis-server.js';
import { loadConsumers, runConsumers } from './run-consumers.js';

type BullMQ = typeof import('bullmq');

export interface BullmqOptions {
  readonly consumers: readonly string[];
  /** The Worker's `concurrency`. */
  readonly concurrency: number;
  /** 'add': one `queue.add` per event, `inFlight` at a time; 'bulk': `queue.addBulk` of `bulkSize` jobs. */
  readonly producer: { readonly kind: 'add'; readonly inFlight: number } | { readonly kind: 'bulk'; readonly bulkSize: number };
}

/** Why BullMQ cannot be measured here, or null. */
export async function bullmqMissing(): Promise<string | null> {
  const redis = redisServerMissing();
  if (redis !== null) return redis;
  // Found, not loaded: the client is imported only when its scenarios are set up. Loading it changes
  // the whole process (ioredis subclasses String, after which V8 runs string methods on a slower
  // path), so imported up front it would color every suite measured before this one.
  try {
    import.meta.resolve('bullmq');
    import.meta.resolve('ioredis');
  } catch (err) {
    return `the optional packages bullmq and ioredis are not installed (${(err as Error).message.split('\n')[0]})`;
  }
  return null;
}

export function bullmqScenario(head: ScenarioHead, inputs: readonly EventInput[], options: BullmqOptions, missing: string | null): Planned {
  if (missing !== null) return { ...head, unavailable: missing };
  let redis: RedisServer | undefined;
  let queue: InstanceType<BullMQ['Queue']> | undefined;
  let worker: InstanceType<BullMQ['Worker']> | undefined;
  let handled = 0;
  let target = 0;
  let finished: (() => void) | null = null;
  let failure: Error | null = null;
  return {
    ...head,
    events: inputs.length,
    async setup() {
      const { Queue, Worker } = (await import('bullmq')) as BullMQ;
      const consumers: Consumer[] = await loadConsumers(options.consumers.map((p) => pathToFileURL(p).href));
      redis = await startRedisServer();
      const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
      queue = new Queue('eventrail-bench', { connection, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
      worker = new Worker(
        'eventrail-bench',
        async (job) => {
          await runConsumers(consumers, job.data as Event);
        },
        { connection, concurrency: options.concurrency },
      );
      worker.on('completed', () => {
        if (++handled === target) finished?.();
      });
      worker.on('failed', (_job, err) => {
        failure ??= err;
        finished?.();
      });
      await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    },
    async run() {
      const q = queue!;
      handled = 0;
      target = inputs.length;
      const done = new Promise<void>((resolve) => (finished = resolve));
      if (options.producer.kind === 'bulk') {
        const size = options.producer.bulkSize;
        for (let i = 0; i < inputs.length; i += size) {
          await q.addBulk(inputs.slice(i, i + size).map((input) => ({ name: 'event', data: literalEvent(input) })));
        }
      } else {
        let next = 0;
        const producer = async () => {
          while (next < inputs.length) await q.add('event', literalEvent(inputs[next++]!));
        };
        await Promise.all(Array.from({ length: options.producer.inFlight }, producer));
      }
      await done;
      finished = null;
      if (failure !== null) throw failure;
    },
    async teardown() {
      await worker?.close();
      await queue?.close();
      await redis?.stop();
      worker = undefined;
      queue = undefined;
      redis = undefined;
    },
  };
}
