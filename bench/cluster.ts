/**
 * Many instances on one lmdb store (the consumer-groups issue's figures): N
 * instance processes (cluster-instance.ts) share one store folder and run the
 * two trivial consumers, i.e. two consumer groups; each emits `events` events.
 *
 * - throughput (once the leases have spread over the instances): events/s handled by each whole group, i.e. every event emitted
 *   by every instance over the wall time from `go` until every cursor of both
 *   groups stands at its partition's last event; measured with one instance
 *   (the fast path: it holds every lease) and with three (each reads the shared
 *   log for its partitions). The end is seen by reading the cursors, which the
 *   instances write every `checkpointMs`: that much is added to the wall time.
 * - takeover: the three emit again and one is killed with SIGKILL once it has
 *   acknowledged a quarter of its emits; the time from the kill until the
 *   survivors hold every (group, partition) lease, read from the store every
 *   10 ms. Bounded by leaseMs + renewMs by design.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveOptions } from '../src/options.js';
import { openStore } from '../src/store/open.js';
import { positionToString, type EventStore } from '../src/store/store.js';
import type { ClusterInstanceConfig, FromClusterInstance, ToClusterInstance } from './cluster-instance.js';
import type { ClusterResult, ClusterThroughput } from './results.js';

export interface ClusterOptions {
  /** Temporary folders, one per store: removed by the caller. */
  readonly folders: readonly [string, string];
  readonly events: number;
  readonly instances: number;
}

const PARTITIONS = 16;
const LEASE_MS = 2_000;
const RENEW_MS = 250;
const CHECKPOINT_MS = 20;
const USERS = 1_000;
const GROUPS = 2;
/** A cap on every wait, to fail a stuck run: never the expected path. */
const CAP_MS = 300_000;

class Member {
  readonly child: ChildProcess;
  readonly name: string;
  readonly messages: FromClusterInstance[] = [];
  acked = 0;
  #exit: string | null = null;
  #stderr = '';
  readonly exited: Promise<void>;

  constructor(config: ClusterInstanceConfig) {
    this.name = config.instance;
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('EVENTRAIL_')) delete env[name];
    this.child = fork(new URL('./cluster-instance.js', import.meta.url), [JSON.stringify(config)], {
      env,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-2000)));
    this.child.on('message', (m: FromClusterInstance) => {
      this.messages.push(m);
      if (m.kind === 'acked') this.acked = m.acked;
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.#exit = String(signal ?? code);
        resolve();
      }),
    );
  }

  send(message: ToClusterInstance): void {
    this.child.send(message);
  }

  /** The first message matching `match`, once it comes; rejects if the process exits first or says it failed. */
  async wait<T extends FromClusterInstance>(match: (m: FromClusterInstance) => m is T): Promise<T> {
    const deadline = Date.now() + CAP_MS;
    for (;;) {
      const found = this.messages.find(match);
      if (found !== undefined) return found;
      const failed = this.messages.find((m) => m.kind === 'failed');
      if (failed !== undefined) throw new Error(`${this.name}: ${failed.error}`);
      if (this.#exit !== null)
        throw new Error(`${this.name} exited (${this.#exit}): ${this.#stderr.trim().split('\n').slice(-3).join(' | ')}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out`);
      await sleep(5);
    }
  }

  kill(): void {
    if (this.#exit === null) this.child.kill('SIGKILL');
  }
}

const isReady = (m: FromClusterInstance): m is Extract<FromClusterInstance, { kind: 'ready' }> => m.kind === 'ready';
const emittedIn =
  (round: number) =>
  (m: FromClusterInstance): m is Extract<FromClusterInstance, { kind: 'emitted' }> =>
    m.kind === 'emitted' && m.round === round;

async function until(what: string, check: () => Promise<boolean>, everyMs: number): Promise<number> {
  const deadline = Date.now() + CAP_MS;
  for (;;) {
    const at = Date.now();
    if (await check()) return at;
    if (at > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Starts `count` instances on the store in `folder`: the first creates it, the others join together. */
async function startCluster(folder: string, count: number, events: number): Promise<Member[]> {
  const config = (i: number): ClusterInstanceConfig => ({
    store: folder,
    instance: `bench-${i}`,
    emitter: i,
    events,
    users: USERS,
    partitions: PARTITIONS,
    leaseMs: LEASE_MS,
    renewMs: RENEW_MS,
    checkpointMs: CHECKPOINT_MS,
  });
  const members = [new Member(config(0))];
  await members[0]!.wait(isReady);
  for (let i = 1; i < count; i++) members.push(new Member(config(i)));
  await Promise.all(members.map((m) => m.wait(isReady)));
  return members;
}

/** Every member emits its round; resolves when every cursor of every group stands at its partition's last event. */
async function round(store: EventStore, members: readonly Member[], n: number): Promise<number> {
  const started = Date.now();
  for (const m of members) m.send({ kind: 'go', round: n });
  const emitted = await Promise.all(members.map((m) => m.wait(emittedIn(n))));
  const ends = new Array<string | null>(PARTITIONS).fill(null);
  for (const e of emitted)
    e.lastByPartition.forEach((last, p) => {
      if (last !== null && (ends[p] === null || last > ends[p]!)) ends[p] = last;
    });
  const done = await until(
    "every cursor to reach its partition's last event",
    async () => {
      const cursors = await store.readCursors();
      return ends.every((end, p) => {
        if (end === null) return true;
        const of = cursors.filter((c) => c.partition === p && c.position !== null && positionToString(c.position) >= end);
        return of.length === GROUPS;
      });
    },
    5,
  );
  return (done - started) / 1000;
}

async function openShared(folder: string): Promise<EventStore> {
  return (await openStore(resolveOptions({ store: { kind: 'lmdb', path: folder } }).store))!;
}

/** Waits until every lease is held and each member holds some: the joins' rebalance is over, so it is not measured. */
async function settled(store: EventStore, members: readonly Member[]): Promise<void> {
  await until(
    'the leases to spread over the instances',
    async () => {
      const at = Date.now();
      const leases = (await store.readLeases()).filter((l) => l.expiresAt > at);
      return leases.length === GROUPS * PARTITIONS && members.every((m) => leases.some((l) => l.owner === m.name));
    },
    10,
  );
}

async function throughput(
  folder: string,
  instances: number,
  events: number,
  progress: (t: string) => void,
): Promise<{ result: ClusterThroughput; members: Member[]; store: EventStore }> {
  const members = await startCluster(folder, instances, events);
  const store = await openShared(folder);
  await settled(store, members);
  const seconds = await round(store, members, 1);
  const total = instances * events;
  const result: ClusterThroughput = {
    instances,
    events: total,
    seconds: Math.round(seconds * 100) / 100,
    eventsPerSecPerGroup: total / seconds,
  };
  progress(
    `${instances} instance(s): ${total} events handled by each of ${GROUPS} groups in ${result.seconds} s (${Math.round(result.eventsPerSecPerGroup)} events/s per group)`,
  );
  return { result, members, store };
}

async function stop(members: readonly Member[], store: EventStore | null): Promise<void> {
  for (const m of members) m.kill();
  await Promise.all(members.map((m) => m.exited));
  await store?.close();
}

export async function cluster(options: ClusterOptions, progress: (text: string) => void): Promise<ClusterResult> {
  const head = {
    instances: options.instances,
    eventsPerInstance: options.events,
    groups: GROUPS,
    partitions: PARTITIONS,
    leaseMs: LEASE_MS,
    renewMs: RENEW_MS,
    checkpointMs: CHECKPOINT_MS,
  };
  let members: Member[] = [];
  let store: EventStore | null = null;
  try {
    const single = await throughput(options.folders[0], 1, options.events * options.instances, progress);
    await stop(single.members, single.store);
    const many = await throughput(options.folders[1], options.instances, options.events, progress);
    ({ members, store } = many);
    const s = store;

    // Takeover under load: everyone emits again; one dies a quarter of the way through its emits.
    const victim = members[1]!;
    for (const m of members) m.send({ kind: 'go', round: 2 });
    await until('the victim to acknowledge a quarter of its emits', async () => victim.acked >= options.events / 4, 5);
    const held = (await s.readLeases()).filter((l) => l.owner === victim.name).length;
    const killedAt = Date.now();
    victim.kill();
    await victim.exited;
    const lapseAt = Math.max(killedAt, ...(await s.readLeases()).filter((l) => l.owner === victim.name).map((l) => l.expiresAt));
    const takenAt = await until(
      'the survivors to hold every lease',
      async () => {
        const at = Date.now();
        const leases = await s.readLeases();
        return leases.filter((l) => l.owner !== '' && l.owner !== victim.name && l.expiresAt > at).length === GROUPS * PARTITIONS;
      },
      10,
    );
    const takeoverMs = takenAt - killedAt;
    progress(
      `takeover: the survivors held all ${GROUPS * PARTITIONS} leases ${takeoverMs} ms after the kill (the victim held ${held}; they lapsed after ${lapseAt - killedAt} ms)`,
    );
    return {
      status: 'ok',
      ...head,
      single: single.result,
      cluster: many.result,
      takeoverMs,
      lapseMs: lapseAt - killedAt,
      victimLeases: held,
    };
  } catch (err) {
    return {
      status: 'failed',
      error: (err as Error).message,
      ...head,
      single: null,
      cluster: null,
      takeoverMs: null,
      lapseMs: null,
      victimLeases: null,
    };
  } finally {
    await stop(members, store);
  }
}
