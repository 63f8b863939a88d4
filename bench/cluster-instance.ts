/**
 * One instance of the cluster benchmark (cluster.ts): `node
 * cluster-instance.js JSON`, forked with an IPC channel. Its bus shares the
 * lmdb store with the other instances and runs the two trivial consumers (two
 * groups). On every `go` it emits `events` events for users of a shared pool
 * and reports, once they are all acknowledged, the last position it got in
 * each partition: the parent knows from those where every cursor must get to.
 */
import { TRIVIAL_CONSUMERS } from '../src/cli/sweep/consumers/paths.js';
import { createBus } from '../src/index.js';
import { partitionOf } from '../src/bus/partitions.js';

export interface ClusterInstanceConfig {
  readonly store: string;
  readonly instance: string;
  readonly emitter: number;
  readonly events: number;
  readonly users: number;
  readonly partitions: number;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly checkpointMs: number;
}

export type FromClusterInstance =
  | { readonly kind: 'ready' }
  | { readonly kind: 'acked'; readonly acked: number }
  /** Per partition, the highest position this round's acknowledged emits got there (hex), or null. */
  | { readonly kind: 'emitted'; readonly round: number; readonly lastByPartition: ReadonlyArray<string | null> }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'closed' };

export type ToClusterInstance = { readonly kind: 'go'; readonly round: number } | { readonly kind: 'close' };

const send = (message: FromClusterInstance) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

const config = JSON.parse(process.argv[2]!) as ClusterInstanceConfig;
const users = Array.from({ length: config.users }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
const bus = await createBus({
  store: { kind: 'lmdb', path: config.store },
  consumers: [...TRIVIAL_CONSUMERS],
  checkpoint: { instance: config.instance, intervalMs: config.checkpointMs },
  coordination: { partitions: config.partitions, leaseMs: config.leaseMs, renewMs: config.renewMs },
});

async function emitRound(round: number): Promise<void> {
  const last = new Array<string | null>(config.partitions).fill(null);
  let acked = 0;
  const report = Math.max(1, Math.floor(config.events / 20));
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < config.events; i++) {
    const user_id = users[(i * 7919 + config.emitter * 104_729) % users.length]!;
    const p: Promise<void> = bus
      .emit({ event_type: 'UserLoggedIn', payload: { emitter: config.emitter, i }, metadata: { source: 'bench-cluster', user_id } })
      .then((receipt) => {
        const partition = partitionOf(user_id, receipt.event_id, config.partitions);
        const before = last[partition];
        if (before === null || before === undefined || receipt.position > before) last[partition] = receipt.position;
        if (++acked % report === 0) void send({ kind: 'acked', acked });
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    // Emits wait for room (backpressure 'wait'); the window only keeps the set of promises small.
    if (inFlight.size >= 2_048) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await send({ kind: 'emitted', round, lastByPartition: last });
}

process.on('message', (message: ToClusterInstance) => {
  if (message.kind === 'go') {
    emitRound(message.round).catch((err: Error) => send({ kind: 'failed', error: `${err.name}: ${err.message}` }));
  } else {
    void bus.close().then(async () => {
      await send({ kind: 'closed' });
      process.disconnect();
    });
  }
});
await send({ kind: 'ready' });
