/**
 * Store faults on real lmdb: a failed write rejects with StoreWriteError, leaves
 * nothing of its batch behind (the commit counter included), and the store
 * takes writes again once the fault clears.
 *
 * The disk fault is a file size limit (RLIMIT_FSIZE, set with `prlimit`) on a
 * child process: writing past it fails with EFBIG as a full disk would, for
 * root too, and without touching the machine's disks. This file is that child
 * when STORE_FAULTS_CHILD is set.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreReadError, StoreUnavailableError, StoreWriteError } from '../src/errors.js';
import { LmdbStore } from '../src/store/lmdb.js';
import { comparePositions, type EventStore, type Position } from '../src/store/store.js';
import { testEvent, testEvents } from './store-conformance.js';

const CHILD_ENV = 'STORE_FAULTS_CHILD';

async function collectPositions(store: EventStore): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.readEvents()) out.push(e.position.toString('hex'));
  return out;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'eventrail-faults-'));
}

/** The position right after `position`'s commit: what the next append must get when a failed one left no trace. */
function nextCommit(position: Position): string {
  const next = Buffer.alloc(12);
  next.writeBigUInt64BE(position.readBigUInt64BE(0) + 1n, 0);
  return next.toString('hex');
}

function prlimitWorks(): string | null {
  const probe = spawnSync('prlimit', ['--pid', String(process.pid), '--fsize'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `prlimit is not available (${probe.error?.message ?? probe.stderr.trim()})`;
  return null;
}

/** Runs in the child: every step prints one JSON line for the parent to check. */
async function child(path: string): Promise<void> {
  const report = (step: string, data: object) => process.stdout.write(`${JSON.stringify({ step, ...data })}\n`);
  const setFileSizeLimit = (limit: string) => execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${limit}:`]);
  let store = await LmdbStore.open({ path, prefix: 'faults' });
  const first = await store.append(testEvents(100).map((e) => e.item));
  const before = await collectPositions(store);

  // The data file may not grow any more: the next large commit cannot be written.
  setFileSizeLimit(String(statSync(join(path, 'data.mdb')).size));
  const failing = testEvents(2000, () => ({ padding: 500, audited: true, checkDuplicate: true }));
  try {
    await store.append(failing.map((e) => e.item));
    report('append', { rejected: false });
  } catch (err) {
    const cause = (err as Error).cause as { code?: unknown; message?: string } | undefined;
    report('append', {
      rejected: true,
      name: (err as Error).name,
      code: (err as { code?: string }).code,
      isStoreWriteError: err instanceof StoreWriteError,
      cause: cause?.message,
    });
  }
  const stats = await store.stats();
  report('after-failure', {
    positions: await collectPositions(store),
    events: stats.events,
    auditEntries: stats.auditEntries,
    lookup: await store.lookup(failing[0]!.item.eventId),
  });

  // The fault clears: the same batch now goes in, at the next commit.
  setFileSizeLimit('unlimited');
  const retried = await store.append(failing.map((e) => e.item));
  report('retry', { firstPosition: retried.positions[0]!.toString('hex'), duplicates: retried.duplicate.filter(Boolean).length });
  await store.close();

  store = await LmdbStore.open({ path, prefix: 'faults' });
  const reopened = await store.stats();
  let audit = 0;
  for await (const _ of store.readAudit()) audit++;
  report('reopened', {
    events: reopened.events,
    auditEntries: reopened.auditEntries,
    audit,
    positions: (await collectPositions(store)).length,
  });
  await store.close();
  report('done', { before: before.length, lastBefore: first.positions[99]!.toString('hex') });
}

if (process.env[CHILD_ENV]) {
  await child(process.env[CHILD_ENV]);
} else {
  describe('store faults (lmdb)', () => {
    it('rejects a batch that fails halfway through its transaction, leaving nothing of it, and goes on', async () => {
      const path = tempDir();
      const store = await LmdbStore.open({ path, prefix: 'faults' });
      try {
        const first = await store.append(testEvents(10).map((e) => e.item));
        // A tenant id past lmdb's key size limit fails at its index key: after
        // the block, the id keys and the counter were written in the same transaction.
        const bad = [testEvent({ tenantId: 'ok' }), testEvent({ tenantId: 'x'.repeat(3000), audited: true })];
        const good = testEvents(5, () => ({ tenantId: 'ok' }));
        // Both in the same event turn, so lmdb-js commits them in one lmdb transaction.
        const [badResult, goodResult] = await Promise.allSettled([
          store.append(bad.map((e) => e.item)),
          store.append(good.map((e) => e.item)),
        ]);
        assert.equal(badResult.status, 'rejected');
        const err = (badResult as PromiseRejectedResult).reason as StoreWriteError;
        assert.ok(err instanceof StoreWriteError, String(err));
        assert.equal(err.code, 'ERR_EVENTRAIL_STORE_WRITE');
        assert.ok(err.cause instanceof Error, 'cause is the lmdb error');
        assert.match((err.cause as Error).message, /key size/i);

        assert.equal(goodResult.status, 'fulfilled', 'the other append of the turn commits');
        const goodPositions = (goodResult as PromiseFulfilledResult<{ positions: Position[] }>).value.positions;
        assert.equal(goodPositions[0]!.toString('hex'), nextCommit(first.positions[9]!), 'the failed batch did not take a commit number');

        assert.equal(await store.lookup(bad[0]!.item.eventId), null);
        assert.deepEqual(
          await collectPositions(store),
          [...first.positions, ...goodPositions].map((p) => p.toString('hex')),
        );
        const stats = await store.stats();
        assert.equal(stats.events, 15);
        assert.equal(stats.auditEntries, 0);
        let tenantEvents = 0;
        for await (const _ of store.readEvents({ tenantId: 'ok' })) tenantEvents++;
        assert.equal(tenantEvents, 5);

        const later = await store.append([testEvent({ tenantId: 'ok' }).item, { ...bad[0]!.item, checkDuplicate: true }]);
        assert.deepEqual(later.duplicate, [false, false], 'the failed batch’s ids were never stored');
        assert.ok(comparePositions(later.positions[0]!, goodPositions[4]!) > 0);
      } finally {
        await store.close();
        rmSync(path, { recursive: true, force: true });
      }
    });

    it('rejects a commit the disk refuses, keeps the store consistent, and writes again once the fault clears', async (t) => {
      const unavailable = prlimitWorks();
      if (unavailable) {
        t.skip(unavailable);
        return;
      }
      const path = tempDir();
      try {
        const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
          env: { ...process.env, [CHILD_ENV]: path },
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(run.status, 0, `child failed (signal ${run.signal}):\n${run.stderr}`);
        const steps = new Map<string, Record<string, unknown>>();
        for (const line of run.stdout.split('\n').filter(Boolean)) {
          const { step, ...data } = JSON.parse(line) as { step: string } & Record<string, unknown>;
          steps.set(step, data);
        }
        const done = steps.get('done');
        assert.ok(done, `the child finished:\n${run.stdout}\n${run.stderr}`);
        assert.deepEqual(steps.get('append'), {
          rejected: true,
          name: 'StoreWriteError',
          code: 'ERR_EVENTRAIL_STORE_WRITE',
          isStoreWriteError: true,
          cause: steps.get('append')!.cause,
        });
        assert.match(String(steps.get('append')!.cause), /too large/i, 'the cause is the write error lmdb got');
        const after = steps.get('after-failure')!;
        assert.equal((after.positions as string[]).length, 100, 'nothing of the failed batch is readable');
        assert.equal(after.events, 100);
        assert.equal(after.auditEntries, 0);
        assert.equal(after.lookup, null);
        const retry = steps.get('retry')!;
        assert.equal(retry.duplicates, 0, 'the failed batch’s ids were never stored');
        assert.equal(retry.firstPosition, nextCommit(Buffer.from(String(done.lastBefore), 'hex')), 'the counter did not advance');
        assert.deepEqual(steps.get('reopened'), { events: 2100, auditEntries: 2000, audit: 2000, positions: 2100 });
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    });

    it('grows past a small mapSize instead of failing: lmdb-js resizes the map', async () => {
      const path = tempDir();
      try {
        const store = await LmdbStore.open({ path, prefix: 'faults', mapSize: 64 * 1024 });
        for (let i = 0; i < 5; i++) await store.append(testEvents(200, () => ({ padding: 5_000 })).map((e) => e.item));
        const stats = await store.stats();
        assert.equal(stats.events, 1000);
        assert.ok(stats.bytes! > 5_000_000, `the data file grew to ${stats.bytes} bytes`);
        await store.close();
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    });

    it('reports a store that cannot be opened as StoreUnavailableError', async () => {
      const path = tempDir();
      try {
        writeFileSync(join(path, 'file'), 'not a folder');
        await assert.rejects(LmdbStore.open({ path: join(path, 'file', 'store'), prefix: 'faults' }), StoreUnavailableError);
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    });

    it('refuses a folder it may not write to', async (t) => {
      if (process.getuid?.() === 0) {
        t.skip('running as root: file permissions do not stop root, so a read-only folder cannot make a write fail');
        return;
      }
      const path = tempDir();
      const readOnly = join(path, 'ro');
      mkdirSync(readOnly, { mode: 0o555 });
      try {
        await assert.rejects(LmdbStore.open({ path: readOnly, prefix: 'faults' }), StoreUnavailableError);
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    });

    it('rejects writes after close with StoreWriteError', async () => {
      const path = tempDir();
      try {
        const store = await LmdbStore.open({ path, prefix: 'faults' });
        await store.close();
        await assert.rejects(store.append([testEvent().item]), StoreWriteError);
        await assert.rejects(store.writeProgress({ removeDeadLetters: [{ consumer: 'c', position: Buffer.alloc(12) }] }), StoreWriteError);
        await assert.rejects(
          store.coordinate({ instance: 'a', groups: [], partitions: 1, leaseMs: 1_000, now: Date.now() }),
          StoreWriteError,
        );
        await assert.rejects(store.waitForAppend(null, new AbortController().signal), StoreReadError);
        await store.close();
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    });
  });
}
