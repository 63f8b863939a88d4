/**
 * `eventrail stats`: what a store holds. Event counts by type and each
 * consumer group's lag need one pass over the events (read page by page,
 * memory stays flat); the totals and the size come from the store's counters,
 * cursors and leases from their own small ranges.
 */
import { parseArgs } from 'node:util';
import { eventTypeKey } from '../event/event.js';
import { decodeEvent } from '../store/read.js';
import { positionToString, type CursorRecord, type LeaseRecord, type Position } from '../store/store.js';
import { HELP_OPTION, STORE_OPTIONS, parse } from './args.js';
import { CORRUPT_HELP, CorruptReport } from './corrupt.js';
import type { Output } from './output.js';
import { describeStore, openForReading } from './store.js';

export const STATS_HELP = `Usage: eventrail stats [options]

Prints what a store holds: its size on disk, event counts by type, audit
entries, dead letters by consumer, and each consumer group: its partitions,
its lowest cursor and lag (the number of stored events after that cursor: at
most what the group has still to handle, or would be delivered again after a
restart), and which instances hold its partitions' leases until when. Reads
every event once.

${CORRUPT_HELP}
Options:
  --store PATH     the lmdb store folder (default: the config's store, else ./eventrail-data)
  --config FILE    a JSON config file (its store and prefix are used)
  --json           one JSON object instead of text
  -h, --help       this help
`;

const OPTIONS = { ...STORE_OPTIONS, ...HELP_OPTION, json: { type: 'boolean' } } as const;

export interface StoreReport {
  readonly store: string;
  readonly bytes: number | null;
  /** Stored events, a corrupt block counting as one (its events cannot be told apart). */
  readonly events: number;
  /** Stored values skipped because they cannot be decoded: corrupt event blocks, events and dead letters. */
  readonly corrupt: number;
  readonly lastPosition: string | null;
  readonly eventsByType: Readonly<Record<string, number>>;
  readonly auditEntries: number;
  readonly deadLetters: { readonly total: number; readonly byConsumer: Readonly<Record<string, number>> };
  /** Consumer groups (a consumer's name), by name. */
  readonly groups: readonly GroupReport[];
}

export interface GroupReport {
  readonly group: string;
  /** Partitions the group has leases or cursors for. */
  readonly partitions: number;
  /** The lowest cursor over its partitions; null when one has none (it starts from the beginning of the log). */
  readonly cursor: string | null;
  /** Stored events after `cursor`: an upper bound of what the group has still to handle. */
  readonly lag: number;
  /** Instances holding live leases, by id: how many partitions each, and when its last lease lapses (RFC 3339). */
  readonly owners: ReadonlyArray<{ readonly instance: string; readonly partitions: number; readonly until: string }>;
  /** Partitions whose lease is free, lapsed, or never taken. */
  readonly unowned: number;
}

export async function statsCommand(args: readonly string[], out: Output): Promise<number> {
  const { values } = parse('stats', () => parseArgs({ args: [...args], options: OPTIONS, strict: true }));
  if (values.help) {
    await out.write(STATS_HELP);
    return 0;
  }
  const { store, codec, storeOptions } = await openForReading(values);
  const corrupt = new CorruptReport('stats');
  let report: StoreReport;
  try {
    const totals = await store.stats();
    const groups = groupsOf(await store.readCursors(), await store.readLeases(), Date.now());
    const byType = new Map<string, number>();
    let events = 0;
    for await (const stored of store.readEvents({ pageSize: 4096 })) {
      events++;
      for (const g of groups) if (g.lowest === null || Buffer.compare(stored.position, g.lowest) > 0) g.lag++;
      // An undecodable block or event: counted by type nowhere, still in the totals and the lag.
      const event = decodeEvent(codec, stored, corrupt.onCorrupt);
      if (event === null) continue;
      const type = eventTypeKey(event.event_type);
      byType.set(type, (byType.get(type) ?? 0) + 1);
    }
    const byConsumer = new Map<string, number>();
    let deadLetters = 0;
    for await (const record of store.readDeadLetters({ onCorrupt: corrupt.onCorrupt })) {
      deadLetters++;
      byConsumer.set(record.consumer, (byConsumer.get(record.consumer) ?? 0) + 1);
    }
    report = {
      store: describeStore(storeOptions),
      bytes: totals.bytes,
      events,
      corrupt: corrupt.skipped,
      lastPosition: totals.lastPosition === null ? null : positionToString(totals.lastPosition),
      eventsByType: Object.fromEntries([...byType].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))),
      auditEntries: totals.auditEntries,
      deadLetters: { total: deadLetters, byConsumer: Object.fromEntries([...byConsumer].sort()) },
      groups: groups.map((g) => ({
        group: g.group,
        partitions: g.partitions,
        cursor: g.lowest === null ? null : positionToString(g.lowest),
        lag: g.lag,
        owners: g.owners,
        unowned: g.unowned,
      })),
    };
  } finally {
    await store.close();
  }
  await out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStats(report));
  return corrupt.exitCode;
}

const count = (n: number) => n.toLocaleString('en-US');
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Each group's partitions (as far as its leases and cursors show them), its
 * lowest cursor, and its live lease owners. The lag is counted later, in the
 * pass over the events.
 */
function groupsOf(cursors: readonly CursorRecord[], leases: readonly LeaseRecord[], now: number) {
  const names = [...new Set([...cursors.map((c) => c.group), ...leases.map((l) => l.group)])].sort(compare);
  return names.map((group) => {
    const mine = cursors.filter((c) => c.group === group);
    const held = leases.filter((l) => l.group === group);
    const partitions = Math.max(0, ...mine.map((c) => c.partition + 1), ...held.map((l) => l.partition + 1));
    let lowest: Position | null = null;
    const byPartition = new Map(mine.map((c) => [c.partition, c.position]));
    for (let p = 0; p < partitions; p++) {
      const position = byPartition.get(p) ?? null;
      if (position === null) {
        lowest = null;
        break;
      }
      if (lowest === null || Buffer.compare(position, lowest) < 0) lowest = position;
    }
    const owners = new Map<string, { partitions: number; until: number }>();
    for (const lease of held) {
      if (lease.owner === '' || lease.expiresAt <= now) continue;
      const owner = owners.get(lease.owner) ?? { partitions: 0, until: 0 };
      owner.partitions++;
      owner.until = Math.max(owner.until, lease.expiresAt);
      owners.set(lease.owner, owner);
    }
    const owned = [...owners.values()].reduce((n, o) => n + o.partitions, 0);
    return {
      group,
      partitions,
      lowest,
      lag: 0,
      owners: [...owners]
        .sort((a, b) => compare(a[0], b[0]))
        .map(([instance, o]) => ({ instance, partitions: o.partitions, until: new Date(o.until).toISOString() })),
      unowned: partitions - owned,
    };
  });
}

function renderStats(r: StoreReport): string {
  const lines: string[] = [r.store];
  lines.push(`size on disk: ${r.bytes === null ? 'unknown' : `${(r.bytes / 2 ** 20).toFixed(1)} MiB`}`);
  lines.push(`events: ${count(r.events)}${r.lastPosition ? ` (last position ${r.lastPosition})` : ''}`);
  const typeWidth = Math.max(0, ...Object.keys(r.eventsByType).map((k) => k.length));
  for (const [type, n] of Object.entries(r.eventsByType)) lines.push(`  ${type.padEnd(typeWidth)}  ${count(n).padStart(12)}`);
  if (r.corrupt > 0) lines.push(`corrupt values skipped: ${count(r.corrupt)} (each reported on stderr)`);
  lines.push(`audit entries: ${count(r.auditEntries)}`);
  lines.push(`dead letters: ${count(r.deadLetters.total)}`);
  for (const [consumer, n] of Object.entries(r.deadLetters.byConsumer)) lines.push(`  ${consumer}  ${count(n)}`);
  if (r.groups.length === 0) {
    lines.push('consumer groups: none (no bus with consumers has run on this store)');
  } else {
    lines.push('consumer groups (lag = stored events after the lowest cursor):');
    const nameWidth = Math.max(...r.groups.map((g) => g.group.length));
    for (const g of r.groups) {
      lines.push(
        `  ${g.group.padEnd(nameWidth)}  lag ${count(g.lag).padStart(10)}  partitions ${String(g.partitions).padStart(3)}  ` +
          `from ${g.cursor ?? 'the beginning'}`,
      );
      for (const o of g.owners)
        lines.push(`    ${o.instance}: ${o.partitions} partition${o.partitions === 1 ? '' : 's'}, lease until ${o.until}`);
      if (g.unowned > 0) lines.push(`    unowned: ${g.unowned} partition${g.unowned === 1 ? '' : 's'}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
