/**
 * `eventrail stats`: what a store holds. Event counts by type and checkpoint
 * lag need one pass over the events (read page by page, memory stays flat);
 * the totals and the size come from the store's counters.
 */
import { parseArgs } from 'node:util';
import { BUS_CHECKPOINT } from '../bus/checkpoints.js';
import { eventTypeKey } from '../event/event.js';
import { decodeEvent } from '../store/read.js';
import { positionToString } from '../store/store.js';
import { HELP_OPTION, STORE_OPTIONS, parse } from './args.js';
import { CORRUPT_HELP, CorruptReport } from './corrupt.js';
import type { Output } from './output.js';
import { describeStore, openForReading } from './store.js';

export const STATS_HELP = `Usage: eventrail stats [options]

Prints what a store holds: its size on disk, event counts by type, audit
entries, dead letters by consumer, and each checkpoint with its lag (the
number of stored events after it: what that consumer has still to handle, or
would be delivered again after a restart). Reads every event once.

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
  /** Per instance (`checkpoint.instance`): `$bus` is the bus's own checkpoint, the others are consumer names. */
  readonly checkpoints: ReadonlyArray<{
    readonly instance: string;
    readonly consumer: string;
    readonly position: string;
    readonly lag: number;
  }>;
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
    const checkpoints = [...(await store.readCheckpoints())].map(([name, position]) => ({ ...splitName(name), position, lag: 0 }));
    const byType = new Map<string, number>();
    let events = 0;
    for await (const stored of store.readEvents({ pageSize: 4096 })) {
      events++;
      for (const cp of checkpoints) if (Buffer.compare(stored.position, cp.position) > 0) cp.lag++;
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
      checkpoints: checkpoints
        .sort(
          (a, b) =>
            compare(a.instance, b.instance) ||
            (a.consumer === BUS_CHECKPOINT ? -1 : b.consumer === BUS_CHECKPOINT ? 1 : compare(a.consumer, b.consumer)),
        )
        .map((cp) => ({ instance: cp.instance, consumer: cp.consumer, position: positionToString(cp.position), lag: cp.lag })),
    };
  } finally {
    await store.close();
  }
  await out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStats(report));
  return corrupt.exitCode;
}

const count = (n: number) => n.toLocaleString('en-US');
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Checkpoints are stored as `instance/name` (see bus/checkpoints.ts); neither part can hold a slash. */
function splitName(name: string): { instance: string; consumer: string } {
  const slash = name.indexOf('/');
  return slash < 0 ? { instance: '', consumer: name } : { instance: name.slice(0, slash), consumer: name.slice(slash + 1) };
}

const label = (cp: { instance: string; consumer: string }) =>
  `${cp.instance === '' ? '' : `${cp.instance}: `}${cp.consumer === BUS_CHECKPOINT ? '(bus)' : cp.consumer}`;

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
  if (r.checkpoints.length === 0) {
    lines.push('checkpoints: none (no bus with consumers has run on this store)');
  } else {
    lines.push('checkpoints by instance (lag = stored events after the checkpoint):');
    const nameWidth = Math.max(...r.checkpoints.map((c) => label(c).length));
    for (const cp of r.checkpoints) lines.push(`  ${label(cp).padEnd(nameWidth)}  lag ${count(cp.lag).padStart(10)}  at ${cp.position}`);
  }
  return `${lines.join('\n')}\n`;
}
