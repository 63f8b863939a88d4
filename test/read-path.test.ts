/**
 * One read path: bus.replay() and `eventrail replay`, bus.audit.query() and
 * `eventrail audit` read the store through the same reader (src/store/read.ts),
 * so for the same query they give the same results and report the same
 * unreadable values. The store holds events a bus wrote and values a faulty
 * writer left that decode but are not events.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Codec } from '../src/codec.js';
import { createBus, type AuditQuery, type EventInput, type ReplayQuery } from '../src/index.js';
import { openStore } from '../src/store/open.js';
import type { AppendItem } from '../src/store/store.js';
import { tempDir, uuid, type TempDir } from './helpers.js';
import { cli, jsonLines } from './fixtures/cli-run.js';

const TENANT_A = uuid();
const TENANT_B = uuid();
const USER_1 = uuid();
const USER_2 = uuid();
const at = (minute: number) => new Date(Date.parse('2024-03-01T00:00:00Z') + minute * 60_000).toISOString();

function inputs(): EventInput[] {
  const list: EventInput[] = [];
  const types = ['UserLoggedIn', 'UserLoggedOut', 'SessionCreated', { Custom: 'OrderPlaced' }] as const;
  for (let i = 0; i < 24; i++) {
    list.push({
      event_type: types[i % types.length]!,
      timestamp: at(i),
      payload: { n: i },
      metadata: { source: 'read_path_test', user_id: i % 3 === 0 ? USER_2 : USER_1, tenant_id: i % 2 === 0 ? TENANT_A : TENANT_B },
    });
  }
  return list;
}

/** Values that decode but are not events, appended after the events: what a faulty writer leaves. */
async function appendNonEvents(path: string): Promise<void> {
  const codec = new Codec();
  const store = (await openStore({ kind: 'lmdb', path, prefix: 'eventrail' }))!;
  const values: Array<{ value: unknown; tenant: string | null }> = [
    { value: { event_id: uuid(), timestamp: 5, event_type: 'UserLoggedIn', payload: {}, metadata: {} }, tenant: TENANT_A },
    { value: 42, tenant: null },
    { value: { event_id: uuid(), timestamp: at(30), event_type: 'NotAType', payload: {}, metadata: {} }, tenant: TENANT_B },
  ];
  try {
    const items: AppendItem[] = values.map(({ value, tenant }) => ({
      eventId: uuid(),
      checkDuplicate: false,
      bytes: codec.encode(value),
      tenantId: tenant,
      timestampMs: Date.parse(at(30)),
      auditId: null,
    }));
    await store.append(items);
  } finally {
    await store.close();
  }
}

const CLI_PREFIX = (command: string) => new RegExp(`^eventrail ${command}: skipped ERR_EVENTRAIL_STORE_CORRUPT: `);

interface Read {
  readonly lines: string[];
  readonly corrupt: string[];
}

describe('one read path for the bus and the CLI', () => {
  let dir: TempDir;
  let path: string;
  const replays: Array<{ args: string[]; query: ReplayQuery; bus?: Read }> = [];
  const audits: Array<{ args: string[]; query: AuditQuery; bus?: Read }> = [];

  before(async () => {
    dir = tempDir('eventrail-read-path-');
    path = dir.file('store');
    const writer = await createBus({ store: { kind: 'lmdb', path }, audit: { eventTypes: ['UserLoggedIn', { Custom: 'OrderPlaced' }] } });
    const receipts = await writer.emitMany(inputs());
    await writer.close();
    await appendNonEvents(path);
    const third = receipts[2]!.position;
    replays.push(
      { args: [], query: {} },
      { args: ['--type', 'UserLoggedIn,Custom:OrderPlaced'], query: { types: ['UserLoggedIn', { Custom: 'OrderPlaced' }] } },
      { args: ['--tenant', TENANT_A], query: { tenantId: TENANT_A } },
      { args: ['--tenant', TENANT_B.toUpperCase()], query: { tenantId: TENANT_B.toUpperCase() } },
      { args: ['--from', at(5), '--to', at(9)], query: { from: at(5), to: at(9) } },
      { args: ['--after', third, '--limit', '4'], query: { after: third, limit: 4 } },
      { args: ['--type', 'SessionCreated', '--limit', '2'], query: { types: ['SessionCreated'], limit: 2 } },
    );
    audits.push(
      { args: [], query: {} },
      { args: ['--user', USER_2], query: { userId: USER_2 } },
      { args: ['--tenant', TENANT_B], query: { tenantId: TENANT_B } },
      { args: ['--type', 'Custom:OrderPlaced'], query: { types: [{ Custom: 'OrderPlaced' }] } },
      { args: ['--user', USER_1, '--limit', '3'], query: { userId: USER_1, limit: 3 } },
    );
    // Read through the bus first, then closed, so that the CLI reads the store alone.
    const reader = await createBus({ store: { kind: 'lmdb', path } });
    try {
      for (const r of replays) {
        const corrupt: string[] = [];
        const lines: string[] = [];
        for await (const e of reader.replay({ ...r.query, onCorrupt: (err) => corrupt.push(err.message) })) lines.push(JSON.stringify(e));
        r.bus = { lines, corrupt };
      }
      for (const a of audits) {
        const corrupt: string[] = [];
        const lines: string[] = [];
        for await (const e of reader.audit.query({ ...a.query, onCorrupt: (err) => corrupt.push(err.message) }))
          lines.push(JSON.stringify(e));
        a.bus = { lines, corrupt };
      }
    } finally {
      await reader.close();
    }
  });

  after(() => dir?.remove());

  it('replay: the same events and the same unreadable values, for every filter', async () => {
    for (const r of replays) {
      const run = await cli(['replay', '--store', path, ...r.args]);
      const what = `replay ${r.args.join(' ')}`;
      const stderr = run.stderr.split('\n').filter((l) => l.length > 0);
      assert.ok(
        stderr.every((l) => CLI_PREFIX('replay').test(l)),
        `${what}: ${run.stderr}`,
      );
      assert.deepEqual(
        run.stdout.split('\n').filter((l) => l.length > 0),
        r.bus!.lines,
        `${what}: stdout`,
      );
      assert.deepEqual(
        stderr.map((l) => l.replace(CLI_PREFIX('replay'), '')),
        r.bus!.corrupt,
        `${what}: reported`,
      );
      assert.equal(run.code, r.bus!.corrupt.length === 0 ? 0 : 3, `${what}: exit code`);
    }
    // The checks have something to compare: events, and the non-events reported with why.
    const all = replays[0]!.bus!;
    assert.equal(jsonLines(all.lines.join('\n')).length, 24);
    assert.equal(all.corrupt.length, 3);
    assert.match(all.corrupt[0]!, /is not an event: event_id and timestamp must be strings/);
    assert.match(all.corrupt[1]!, /is not an event: not an object/);
    assert.match(all.corrupt[2]!, /is not an event: event_type /);
    assert.equal(replays[3]!.bus!.lines.length, 12, 'a tenant in upper case finds its events');
    assert.equal(replays[5]!.bus!.lines.length, 4, 'after and limit');
    assert.equal(replays[6]!.bus!.lines.length, 2, 'types and limit');
  });

  it('audit: the same entries for every filter', async () => {
    for (const a of audits) {
      const run = await cli(['audit', '--store', path, ...a.args]);
      const what = `audit ${a.args.join(' ')}`;
      assert.equal(run.code, 0, `${what}: ${run.stderr}`);
      assert.deepEqual(
        run.stdout.split('\n').filter((l) => l.length > 0),
        a.bus!.lines,
        `${what}: stdout`,
      );
      assert.deepEqual(a.bus!.corrupt, []);
    }
    assert.equal(audits[0]!.bus!.lines.length, 12, 'UserLoggedIn and OrderPlaced: half of the events');
    assert.equal(audits[4]!.bus!.lines.length, 3, 'user and limit');
    assert.ok(audits[1]!.bus!.lines.length > 0 && audits[1]!.bus!.lines.length < 12, 'the user filter filters');
  });
});
