/**
 * The `eventrail` commands on a store the test fills: replay, audit,
 * dead-letters and stats print what was stored; --help works; bad flags and
 * values exit 2 with a message; on a store whose bytes were damaged, each
 * command reports every corrupt value on stderr, prints the rest and exits 3.
 * The binary runs in a child process.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { open } from 'lmdb';
import { Codec } from '../../src/codec.js';
import { createBus } from '../../src/index.js';
import { decodeDeadLetter, encodeDeadLetter } from '../../src/store/layout/dead-letters.js';
import { StoreLayout } from '../../src/store/layout/keys.js';
import type { AuditEntry, Event, EventBus, EventInput } from '../../src/index.js';
import { eventOffset, fixture, tempDir, uuid, type TempDir } from '../helpers.js';
import { CLI, cli, jsonLines } from '../fixtures/cli-run.js';

const TENANT_A = uuid();
const TENANT_B = uuid();
const USER_1 = uuid();
const USER_2 = uuid();

const minute = (m: number, day = '2024-01-01') => new Date(Date.parse(`${day}T00:00:00Z`) + m * 60_000).toISOString();

function inputs(): EventInput[] {
  const list: EventInput[] = [];
  for (let i = 0; i < 10; i++) {
    list.push({
      event_type: 'UserLoggedIn',
      timestamp: minute(i),
      payload: { user_id: USER_1, n: i },
      metadata: { source: 'cli_test', user_id: USER_1, tenant_id: TENANT_A },
    });
  }
  for (let i = 0; i < 5; i++) {
    list.push({
      event_type: 'SessionExpired',
      timestamp: minute(i, '2024-02-01'),
      payload: { n: i },
      metadata: { source: 'cli_test', user_id: USER_2, tenant_id: TENANT_B },
    });
  }
  for (let i = 0; i < 3; i++) {
    list.push({
      event_type: { Custom: 'OrderPlaced' },
      timestamp: minute(10 + i, '2024-02-01'),
      payload: { fail: true, n: i },
      metadata: { source: 'cli_test', user_id: USER_1, tenant_id: TENANT_B },
    });
  }
  for (let i = 0; i < 2; i++) {
    list.push({
      event_type: 'UserLoggedOut',
      timestamp: minute(20 + i, '2024-02-01'),
      payload: { n: i },
      metadata: { source: 'cli_test', user_id: USER_2, tenant_id: TENANT_A },
    });
  }
  return list;
}

/**
 * A store in `dir` filled by a bus running Picky, and a config file naming the
 * same store and Picky. Picky fails `fail: true` events in this bus only, not
 * in the CLI's redrive from the config.
 */
async function pickyStore(dir: TempDir): Promise<{ store: string; config: string; bus: EventBus }> {
  const store = dir.file('store');
  const config = dir.file('eventrail.json');
  writeFileSync(
    config,
    JSON.stringify({ store: { kind: 'lmdb', path: store }, consumers: [fixture('cli-picky')], delivery: { maxAttempts: 1 } }),
  );
  const bus = await createBus({
    store: { kind: 'lmdb', path: store },
    consumers: [{ module: fixture('cli-picky'), options: { fail: true } }],
    delivery: { maxAttempts: 1 },
    pool: { maxThreads: 1 },
  });
  return { store, config, bus };
}

describe('eventrail replay, audit, dead-letters, stats', () => {
  let dir: TempDir;
  let store: string;
  let config: string;
  let ids: string[];

  before(async () => {
    dir = tempDir('eventrail-cli-');
    const filled = await pickyStore(dir);
    ({ store, config } = filled);
    const bus = filled.bus;
    const receipts = [];
    for (const input of inputs()) receipts.push(await bus.emit(input));
    await bus.flush();
    await bus.close();
    ids = receipts.map((r) => r.event_id);
  });

  after(() => dir.remove());

  test(`runs ${CLI}`, () => {
    assert.match(CLI, /(dist|build\/src)\/cli\/main\.js$/);
  });

  test('replay prints every stored event in store order, in serde JSON form', async () => {
    const r = await cli(['replay', '--store', store]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 20);
    const events = lines.map((l) => JSON.parse(l) as Event);
    assert.deepEqual(
      events.map((e) => e.event_id),
      ids,
    );
    for (const e of events) assert.deepEqual(Object.keys(e), ['event_id', 'timestamp', 'event_type', 'payload', 'metadata']);
    assert.deepEqual(Object.keys(events[0]!.metadata), ['correlation_id', 'causation_id', 'user_id', 'tenant_id', 'source']);
    assert.deepEqual(events[15]!.event_type, { Custom: 'OrderPlaced' });
    assert.match(lines[15]!, /"event_type":\{"Custom":"OrderPlaced"\}/);
  });

  test('replay filters by type, tenant, time and count, with --config as well as --store', async () => {
    const byType = jsonLines<Event>(
      (await cli(['replay', '--store', store, '--type', 'UserLoggedIn', '--type', 'Custom:OrderPlaced'])).stdout,
    );
    assert.equal(byType.length, 13);
    const byTenant = jsonLines<Event>((await cli(['replay', '--config', config, '--tenant', TENANT_B])).stdout);
    assert.equal(byTenant.length, 8);
    assert.ok(byTenant.every((e) => e.metadata.tenant_id === TENANT_B));
    const byTime = jsonLines<Event>(
      (await cli(['replay', '--store', store, '--from', '2024-01-01T00:05:00Z', '--to', '2024-01-01T00:08:00Z'])).stdout,
    );
    assert.deepEqual(
      byTime.map((e) => (e.payload as { n: number }).n),
      [5, 6, 7],
    );
    const leapDay = await cli(['replay', '--store', store, '--from', '2024-02-29', '--to', '2024-03-01']);
    assert.equal(leapDay.code, 0, leapDay.stderr);
    assert.equal(leapDay.stdout, '', 'no event was stored on 2024-02-29');
    const limited = jsonLines<Event>(
      (await cli(['replay', '--store', store, '--type', 'SessionExpired,UserLoggedOut', '--limit', '3'])).stdout,
    );
    assert.deepEqual(
      limited.map((e) => e.event_type),
      ['SessionExpired', 'SessionExpired', 'SessionExpired'],
    );
  });

  test('audit prints the audit entries, filtered by user and type', async () => {
    const all = jsonLines<AuditEntry>((await cli(['audit', '--store', store])).stdout);
    assert.equal(all.length, 12); // UserLoggedIn and UserLoggedOut are audited by default
    assert.deepEqual(Object.keys(all[0]!), ['audit_id', 'event_id', 'event_type', 'timestamp', 'payload', 'metadata']);
    const user2 = jsonLines<AuditEntry>((await cli(['audit', '--store', store, '--user', USER_2])).stdout);
    assert.deepEqual(
      user2.map((a) => a.event_type),
      ['UserLoggedOut', 'UserLoggedOut'],
    );
    const logins = jsonLines<AuditEntry>(
      (await cli(['audit', '--config', config, '--type', 'UserLoggedIn', '--from', '2024-01-01T00:08:00Z'])).stdout,
    );
    assert.equal(logins.length, 2);
  });

  test('stats counts events by type, audit entries, dead letters, consumer groups and size', async () => {
    const r = await cli(['stats', '--store', store, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as {
      events: number;
      eventsByType: Record<string, number>;
      auditEntries: number;
      deadLetters: { total: number; byConsumer: Record<string, number> };
      groups: Array<{ group: string; partitions: number; cursor: string | null; lag: number; unowned: number }>;
      bytes: number;
    };
    assert.equal(stats.events, 20);
    assert.deepEqual(stats.eventsByType, { UserLoggedIn: 10, SessionExpired: 5, 'Custom:OrderPlaced': 3, UserLoggedOut: 2 });
    assert.equal(stats.auditEntries, 12);
    assert.deepEqual(stats.deadLetters, { total: 3, byConsumer: { Picky: 3 } });
    const picky = stats.groups.find((g) => g.group === 'Picky');
    assert.ok(picky, `a group Picky in ${JSON.stringify(stats.groups)}`);
    assert.ok(picky.partitions > 0);
    assert.equal(picky.lag, 0);
    assert.ok(stats.bytes > 0);
    const text = await cli(['stats', '--store', store]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /events: 20/);
    assert.match(text.stdout, /dead letters: 3/);
    assert.match(text.stdout, /Picky\s+lag\s+0\s/);
  });

  test("stats gives a group's lag: the events stored after its lowest cursor", async () => {
    const behind = dir.file('behind');
    // The consumer handles 10 events and its cursors are written on close; a bus without consumers
    // then stores 7 more, which move no cursor: CliCounter is 7 events behind.
    const first = await createBus({ store: { kind: 'lmdb', path: behind }, consumers: [fixture('cli-counter')], pool: { maxThreads: 1 } });
    await first.emitMany(inputs().slice(0, 10));
    await first.flush();
    await first.close();
    const second = await createBus({ store: { kind: 'lmdb', path: behind }, consumers: [] });
    await second.emitMany(inputs().slice(10, 17));
    await second.close();

    const r = await cli(['stats', '--store', behind, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as { events: number; groups: Array<{ group: string; lag: number }> };
    assert.equal(stats.events, 17);
    const counter = stats.groups.find((g) => g.group === 'CliCounter');
    assert.ok(counter, `a group CliCounter in ${JSON.stringify(stats.groups)}`);
    assert.equal(counter.lag, 7);
    const text = await cli(['stats', '--store', behind]);
    assert.match(text.stdout, /CliCounter\s+lag\s+7\s/);
  });

  test('dead-letters list prints the failed deliveries; redrive delivers them again', async () => {
    const listed = jsonLines<{ consumer: string; position: string; event: Event; error: { message: string }; attempts: number }>(
      (await cli(['dead-letters', 'list', '--store', store])).stdout,
    );
    assert.equal(listed.length, 3);
    assert.ok(listed.every((d) => d.consumer === 'Picky' && d.attempts === 1 && /Picky refuses/.test(d.error.message)));
    assert.deepEqual(
      listed.map((d) => d.event.event_id),
      ids.slice(15, 18),
    );
    assert.equal(jsonLines((await cli(['dead-letters', 'list', '--store', store, '--consumer', 'Nobody'])).stdout).length, 0);

    const redriven = await cli(['dead-letters', 'redrive', '--config', config, '--limit', '2']);
    assert.equal(redriven.code, 0, redriven.stderr);
    assert.match(redriven.stdout, /redriven 2 dead letter\(s\)/);
    assert.match(redriven.stdout, /1 matching dead letter\(s\) remain/);
    const left = jsonLines<{ event: Event }>((await cli(['dead-letters', 'list', '--config', config])).stdout);
    assert.deepEqual(
      left.map((d) => d.event.event_id),
      [ids[17]],
    );
  });

  test('--help on every command', async () => {
    for (const command of ['bench', 'replay', 'audit', 'dead-letters', 'stats']) {
      const r = await cli([command, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: eventrail ${command}`));
      assert.match(r.stdout, /--store PATH/);
      assert.match(r.stdout, /--config FILE/);
      if (command !== 'bench') assert.match(r.stdout, /Exit code: 0 when all was read, 3 when anything was\s+skipped/);
    }
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Commands:/);
    assert.match(top.stdout, /3 done but stored\s+values that cannot be decoded were skipped/);
    const topic = await cli(['help', 'stats']);
    assert.equal(topic.code, 0, topic.stderr);
    assert.match(topic.stdout, /^Usage: eventrail stats/);
  });

  test('unknown flags and bad values exit 2 with a message', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['replay', '--store', store, '--frm', '2024-01-01'], /unknown option '--frm'/],
      [['replay', '--store', store, '--from', 'yesterday'], /--from must be an RFC 3339 time.*got `yesterday`/],
      [['replay', '--store', store, '--tenant', 'acme'], /--tenant must be a UUID, got `acme`/],
      [['replay', '--store', store, '--type', 'OrderPlaced'], /--type must be one of .*Custom:NAME.*got `OrderPlaced`/],
      [['replay', '--store', store, '--limit', '0'], /--limit must be an integer from 1/],
      [['replay', '--store'], /--store.*argument missing|option '--store <value>' argument missing/],
      [['audit', '--store', store, '--user', '42'], /--user must be a UUID, got `42`/],
      [['dead-letters', '--store', store], /say list or redrive/],
      [['dead-letters', 'purge', '--store', store], /unknown action `purge`/],
      [['stats', '--store', store, '--verbose'], /unknown option '--verbose'/],
      [['stats', '--store', store, 'extra'], /unexpected argument 'extra'/i],
      [['bench', '--threads', '1,two'], /--threads takes a comma-separated list of integers from 1 to 1024.*got `1,two`/],
      [['bench', '--batch', '0'], /--batch takes a comma-separated list of integers from 1 to 65535/],
      [['bench', '--lanes', '8,8'], /--lanes lists a value twice/],
      [['bench', '--suite', 'codec'], /--suite is not an option of eventrail bench: the benchmark suites .* `npm run bench` in a checkout/],
      [['bench', '--chart=out.svg'], /--chart is not an option of eventrail bench/],
      [['bench', '--out', 'out.csv'], /--out writes a \.json file/],
      [['bench', '--from-store'], /--from-store needs --config/],
      [['bench', '--quick', '--json', '--fast'], /unknown option '--fast'/],
      [['bench', '--work', 'sleep'], /--work takes trivial or hash, got `sleep`/],
      [['bench', '--config', config, '--work', 'hash'], /--work chooses built-in consumers: with --config the sweep runs the config's own/],
      [['replay', '--store', store, '--from', '2024-02-31'], /--from names a day that does not exist: 2024-02-31 \(2024-02 has 29 days\)/],
      [
        ['audit', '--store', store, '--to', '2023-02-29T12:00:00Z'],
        /--to names a day that does not exist: 2023-02-29 \(2023-02 has 28 days\)/,
      ],
      [['replay', '--store', store, '--from', '2024-04-31'], /2024-04 has 30 days/],
      [['dead-letters', 'redrive', '--store', store], /redrive runs the consumers that failed: give --config FILE/],
      [['help', 'nosuch'], /unknown command `nosuch`/],
      [['frobnicate'], /unknown command `frobnicate`/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', `${args.join(' ')} printed on stdout`);
    }
  });

  test('a bad config file exits 2 naming the field; a missing store exits 1', async () => {
    const bad = dir.file('bad.json');
    writeFileSync(bad, JSON.stringify({ pool: { maxThreads: 0 } }));
    const r = await cli(['stats', '--config', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pool\.maxThreads/);
    const missing = await cli(['replay', '--store', dir.file('nothing-here')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no eventrail store at .*nothing-here/);
  });
});

describe('eventrail replay, audit, dead-letters, stats on a store with corrupt data', () => {
  let dir: TempDir;
  let store: string;
  let config: string;
  const key = (payload: unknown) => `${(payload as { batch: number }).batch}.${(payload as { i: number }).i}`;
  const batch = (b: number, length: number, skip?: number) => Array.from({ length }, (_, i) => `${b}.${i}`).filter((_, i) => i !== skip);
  const CORRUPT_LINE = (command: string) => new RegExp(`^eventrail ${command}: skipped ERR_EVENTRAIL_STORE_CORRUPT: corrupt store data: `);
  const stderrLines = (text: string) => text.split('\n').filter((l) => l.length > 0);

  before(async () => {
    dir = tempDir('eventrail-cli-corrupt-');
    const filled = await pickyStore(dir);
    ({ store, config } = filled);
    const bus = filled.bus;
    // Batches 0-2: ten audited logins each; batch 3: four orders that Picky fails, so four dead letters.
    for (let b = 0; b < 3; b++) {
      await bus.emitMany(
        Array.from({ length: 10 }, (_, i) => ({
          event_type: 'UserLoggedIn' as const,
          payload: { batch: b, i },
          metadata: { source: 'cli_test', user_id: uuid() },
        })),
      );
    }
    await bus.emitMany(
      Array.from({ length: 4 }, (_, i) => ({
        event_type: { Custom: 'OrderPlaced' },
        payload: { batch: 3, i, fail: true },
        metadata: { source: 'cli_test' },
      })),
    );
    await bus.flush();
    assert.equal((await bus.deadLetters.list()).length, 4);
    await bus.close();

    // Damage the stored bytes directly, as a failing disk would (as test/corrupt-store.test.ts does).
    const layout = new StoreLayout('eventrail');
    const codec = new Codec();
    const db = open<Buffer, Buffer>({ path: store, encoding: 'binary', keyEncoding: 'binary' });
    const read = (range: { start: Buffer; end: Buffer }) =>
      [...db.getRange(range)].map(({ key, value }) => ({ key, value: Buffer.from(value) }));
    const blocks = read(layout.blockRange());
    const audits = read(layout.auditRange());
    const letters = read(layout.deadLetterRange());
    assert.equal(blocks.length, 4, 'one single-chunk block per commit');
    assert.equal(audits.length, 3, 'one single-chunk audit block per commit of logins');
    assert.equal(letters.length, 4, 'one single-chunk dead letter per order');
    // Batch 0: its audit block is garbage (its events are intact).
    await db.put(audits[0]!.key, Buffer.from('not an audit block'));
    // Batch 1: the 5th event's bytes start with 0xc1, which msgpack never uses (its replay and its audit entry fail).
    const second = blocks[1]!.value;
    second[eventOffset(second, 4)] = 0xc1;
    await db.put(blocks[1]!.key, second);
    // Batch 2: the event block is garbage.
    await db.put(blocks[2]!.key, Buffer.from('this is not a block at all'));
    // Dead letter 0: garbage; dead letter 1: a well-formed record whose event bytes are not msgpack.
    await db.put(letters[0]!.key, Buffer.from('not a dead letter'));
    const one = decodeDeadLetter(codec, layout.decodeDeadLetterKey(letters[1]!.key), letters[1]!.value);
    await db.put(letters[1]!.key, encodeDeadLetter(codec, { ...one, event: Buffer.from([0xc1, 0x00]) }));
    await db.close();
  });

  after(() => dir.remove());

  test('replay prints every readable event, reports the corrupt block and event on stderr, exits 3', async () => {
    const r = await cli(['replay', '--store', store]);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(
      jsonLines<Event>(r.stdout).map((e) => key(e.payload)),
      [...batch(0, 10), ...batch(1, 10, 4), ...batch(3, 4)],
    );
    const errors = stderrLines(r.stderr);
    assert.equal(errors.length, 2, r.stderr);
    assert.ok(
      errors.every((l) => CORRUPT_LINE('replay').test(l)),
      r.stderr,
    );
    assert.match(errors[0]!, /the event at [0-9a-f]{24} cannot be decoded/, r.stderr);
    // Filters apply to what can be read; a replay that meets no corrupt value exits 0.
    const limited = await cli(['replay', '--store', store, '--limit', '3']);
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal(limited.stderr, '');
    assert.deepEqual(
      jsonLines<Event>(limited.stdout).map((e) => key(e.payload)),
      batch(0, 3),
    );
  });

  test('audit prints the readable entries, reports the corrupt audit block, event and block, exits 3', async () => {
    const r = await cli(['audit', '--store', store]);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(
      jsonLines<AuditEntry>(r.stdout).map((e) => key(e.payload)),
      batch(1, 10, 4),
    );
    const errors = stderrLines(r.stderr);
    assert.equal(errors.length, 3, r.stderr);
    assert.ok(
      errors.every((l) => CORRUPT_LINE('audit').test(l)),
      r.stderr,
    );
    // The store reports what it reads a page ahead of the entries it hands over, so the order is not asserted.
    for (const what of [/malformed audit block/, /unknown block format/, /the event of audit record [0-9a-f-]{36} cannot be decoded/]) {
      assert.equal(errors.filter((l) => what.test(l)).length, 1, `${what} in ${r.stderr}`);
    }
  });

  test('stats counts what it can, reports every corrupt value, exits 3', async () => {
    const r = await cli(['stats', '--store', store, '--json']);
    assert.equal(r.code, 3, r.stderr);
    const stats = JSON.parse(r.stdout) as {
      events: number;
      corrupt: number;
      eventsByType: Record<string, number>;
      deadLetters: { total: number; byConsumer: Record<string, number> };
    };
    // Batch 2's garbage block counts as one event; batch 1's corrupt event is in the total but in no type.
    assert.equal(stats.events, 10 + 10 + 1 + 4);
    assert.deepEqual(stats.eventsByType, { UserLoggedIn: 19, 'Custom:OrderPlaced': 4 });
    // stats counts dead letters without decoding their events: only the garbage record is corrupt to it.
    assert.deepEqual(stats.deadLetters, { total: 3, byConsumer: { Picky: 3 } });
    assert.equal(stats.corrupt, 3, r.stderr);
    const errors = stderrLines(r.stderr);
    assert.equal(errors.length, 3, r.stderr);
    assert.ok(
      errors.every((l) => CORRUPT_LINE('stats').test(l)),
      r.stderr,
    );
    for (const what of [
      /the event at [0-9a-f]{24} cannot be decoded/,
      /unknown block format/,
      /dead letter Picky\/[0-9a-f]{24} is malformed/,
    ]) {
      assert.equal(errors.filter((l) => what.test(l)).length, 1, `${what} in ${r.stderr}`);
    }
    const text = await cli(['stats', '--store', store]);
    assert.equal(text.code, 3);
    assert.match(text.stdout, /^corrupt values skipped: 3 \(each reported on stderr\)$/m);
  });

  test('dead-letters list prints the readable dead letters and reports the two corrupt ones, exits 3; so does redrive', async () => {
    const r = await cli(['dead-letters', 'list', '--store', store]);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(
      jsonLines<{ event: Event }>(r.stdout).map((d) => key(d.event.payload)),
      ['3.2', '3.3'],
    );
    const errors = stderrLines(r.stderr);
    assert.equal(errors.length, 2, r.stderr);
    assert.ok(
      errors.every((l) => CORRUPT_LINE('dead-letters list').test(l)),
      r.stderr,
    );

    const redriven = await cli(['dead-letters', 'redrive', '--config', config]);
    assert.equal(redriven.code, 3, redriven.stderr);
    assert.equal(
      redriven.stdout,
      `redriven 2 dead letter(s) from the lmdb store ${store} (prefix eventrail); 0 matching dead letter(s) remain\n`,
    );
    const again = stderrLines(redriven.stderr);
    assert.equal(again.length, 2, redriven.stderr);
    assert.ok(
      again.every((l) => CORRUPT_LINE('dead-letters redrive').test(l)),
      redriven.stderr,
    );
    // The corrupt two are still stored and still reported.
    const left = await cli(['dead-letters', 'list', '--store', store]);
    assert.equal(left.code, 3);
    assert.equal(left.stdout, '');
    assert.equal(stderrLines(left.stderr).length, 2);
  });
});
