/**
 * One instance on a shared log (issue 11): delivery follows the log, so
 * events another process appends are delivered by the instance holding the
 * leases, exactly once per group, and the fast path comes back once nobody
 * else appends; cursors are per group, so a group that lags shows it. The
 * suite with several bus processes and a SIGKILL is test/slow/groups.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBus } from '../src/index.js';
import { LmdbStore } from '../src/store/lmdb.js';
import { comparePositions } from '../src/store/store.js';
import { runScript } from './fixtures/cli-run.js';
import { collect, fixture, recorder, tempDir, uuid, waitFor, type Recorder } from './helpers.js';

const event = (n: number, user: string) => ({
  event_type: 'SessionExtended' as const,
  payload: { n, seq: n, key: user },
  metadata: { source: 'shared-log-test', user_id: user },
});

/** The store's head and cursors (positions in hex), read by another process while this one has a bus on the store. */
async function readCursors(
  path: string,
): Promise<{ head: string | null; cursors: Array<{ group: string; partition: number; position: string | null }> }> {
  const r = await runScript(fixture('store-cursors-child'), [path]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { head: string | null; cursors: Array<{ group: string; partition: number; position: string | null }> };
}

/** Runs `body` with a fresh folder, a delivery recorder and a store path in it; the folder is removed afterwards. */
async function inTempStore(body: (ctx: { out: Recorder; path: string }) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    await body({ out: recorder(dir), path: dir.file('store') });
  } finally {
    dir.remove();
  }
}

/** Opens the store at `path` in this process (no bus may have it open here), runs `read`, closes it. */
async function readStore(path: string, read: (store: LmdbStore) => Promise<void>): Promise<void> {
  const store = await LmdbStore.open({ path, prefix: 'eventrail' });
  try {
    await read(store);
  } finally {
    await store.close();
  }
}

/** How many times each event_id was delivered to `consumer`. */
function counts(lines: Array<{ consumer: string; event_id: string }>, consumer: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const line of lines) if (line.consumer === consumer) seen.set(line.event_id, (seen.get(line.event_id) ?? 0) + 1);
  return seen;
}

describe('one instance on a shared log', () => {
  it('delivers what another process appends, once per group, between its own events', async () => {
    await inTempStore(async ({ out, path }) => {
      const bus = await createBus({
        store: { kind: 'lmdb', path },
        consumers: [out.consumer('recorder'), out.consumer('from-beginning')],
        pool: { maxThreads: 1 },
        coordination: { pollMs: 5 },
      });
      try {
        const users = [uuid(), uuid()];
        await Promise.all(Array.from({ length: 100 }, (_, n) => bus.emit(event(n, users[0]!))));
        // Another process appends 150 events while this bus holds every lease: it must read them from the log.
        const child = await runScript(fixture('emit-child'), [path, '150', users[1]!]);
        assert.equal(child.code, 0, child.stderr);
        await Promise.all(Array.from({ length: 100 }, (_, n) => bus.emit(event(100 + n, users[0]!))));
        // flush() waits for every event stored so far in the partitions this instance delivers: its own, which
        // it now stores for the log read to route, and the other process's.
        await bus.flush();
        const lines = out.read();
        for (const consumer of ['Recorder', 'FromBeginning']) {
          const seen = counts(lines, consumer);
          assert.equal(seen.size, 350, `${consumer}: every event`);
          assert.deepEqual(
            [...seen.values()].filter((n) => n !== 1),
            [],
            `${consumer}: each exactly once`,
          );
          // Per key, in log order: the seq of one user's events never goes down.
          for (const user of users) {
            const seqs = lines.filter((l) => l.consumer === consumer && l.key === user).map((l) => l.seq!);
            assert.deepEqual(
              seqs,
              [...seqs].sort((a, b) => a - b),
              `${consumer}: ${user}'s events in order`,
            );
          }
        }
      } finally {
        await bus.close();
      }
      // Closed: every cursor is at or past the last event, and the leases were handed back.
      await readStore(path, async (store) => {
        const head = (await store.head())!;
        const cursors = await store.readCursors();
        assert.ok(cursors.length > 0);
        for (const cursor of cursors) {
          if (cursor.position !== null) assert.ok(comparePositions(cursor.position, head) <= 0);
        }
        for (const lease of await store.readLeases()) assert.equal(lease.owner, '', `lease ${lease.group}/${lease.partition} is free`);
      });
    });
  });

  it("keeps a cursor per group: one that lags does not hold the other's back", async () => {
    await inTempStore(async ({ out, path }) => {
      const bus = await createBus({
        store: { kind: 'lmdb', path },
        consumers: [out.consumer('recorder'), out.consumer('flaky')],
        pool: { maxThreads: 1 },
        // Flaky's second attempt waits a minute (or for close, which runs it at once): its group lags meanwhile.
        delivery: { maxAttempts: 2, backoff: { initialMs: 60_000, maxMs: 60_000 } },
        checkpoint: { intervalMs: 0 },
      });
      let last = '';
      try {
        const user = uuid();
        const receipts = await Promise.all(
          Array.from({ length: 20 }, (_, n) => bus.emit({ ...event(n, user), payload: { n, seq: n, key: user, fail: true } })),
        );
        last = receipts
          .map((r) => r.position!)
          .sort()
          .at(-1)!;
        // Every event is in one partition (one user): the recorder's cursor of it reaches the last event, Flaky's does not move.
        const atLast = async (group: string) =>
          (await readCursors(path)).cursors.some((c) => c.group === group && c.position !== null && c.position >= last);
        await waitFor('the recorder cursor at the last event', () => atLast('Recorder'));
        const { cursors } = await readCursors(path);
        assert.deepEqual(
          cursors.filter((c) => c.group === 'Flaky' && c.position !== null),
          [],
          'Flaky has finished nothing, so it has no cursor',
        );
      } finally {
        // Close runs the waiting retries now: they fail again and are dead-lettered, which finishes them.
        await bus.close();
      }
      await readStore(path, async (store) => {
        const flaky = (await store.readCursors()).filter((c) => c.group === 'Flaky' && c.position !== null);
        assert.ok(
          flaky.some((c) => c.position!.toString('hex') >= last),
          'Flaky is at the last event once its events are dead letters',
        );
        assert.equal((await collect(store.readDeadLetters({ consumer: 'Flaky' }))).length, 20);
      });
    });
  });

  it("starts a new group at the log's head by default, or at its beginning when it says so", async () => {
    await inTempStore(async ({ out, path }) => {
      const user = uuid();
      // History written before either group exists.
      const first = await createBus({ store: { kind: 'lmdb', path }, pool: { maxThreads: 1 } });
      await Promise.all(Array.from({ length: 10 }, (_, n) => first.emit(event(n, user))));
      await first.close();
      const bus = await createBus({
        store: { kind: 'lmdb', path },
        consumers: [out.consumer('recorder'), out.consumer('from-beginning')],
        pool: { maxThreads: 1 },
      });
      try {
        await bus.emit(event(10, user));
        await bus.flush();
        assert.equal(counts(out.read(), 'Recorder').size, 1, "'now' (the default): only the event emitted after the group began");
        assert.equal(counts(out.read(), 'FromBeginning').size, 11, "'beginning': the history too");
      } finally {
        await bus.close();
      }
    });
  });
});
