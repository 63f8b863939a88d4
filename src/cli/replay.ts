/** `eventrail replay`: stored events in store order, one JSON line each (serde's form of the seed's Event). */
import { parseArgs } from 'node:util';
import { readEvents } from '../store/read.js';
import { toSerdeJson } from '../event/serde-json.js';
import { positionFromString } from '../store/store.js';
import { FILTER_OPTIONS, HELP_OPTION, STORE_OPTIONS, UsageError, filtersOf, parse } from './args.js';
import { CORRUPT_HELP, CorruptReport } from './corrupt.js';
import type { Output } from './output.js';
import { openForReading } from './store.js';

export const REPLAY_HELP = `Usage: eventrail replay [options]

Prints stored events in store order as newline-delimited JSON, one event per
line, in serde's JSON form of the seed's Event (the same field names and order).

${CORRUPT_HELP}
Options:
  --store PATH       the lmdb store folder (default: the config's store, else ./eventrail-data)
  --config FILE      a JSON config file (its store and prefix are used)
  --from TIME        events whose timestamp is at or after TIME (RFC 3339, a date, or ms since the epoch)
  --to TIME          events whose timestamp is before TIME
  --tenant UUID      only this tenant's events (read through the tenant index)
  --type TYPE        only these event types (repeat, or comma-separate; Custom:NAME for custom types)
  --after POSITION   only events after this position (24 hex digits, a receipt's position), to resume
  --limit N          at most N events
  -h, --help         this help

Examples:
  eventrail replay --store ./eventrail-data --from 2024-05-01 --type UserLoggedIn
  eventrail replay --config eventrail.json --tenant 7d1c... | jq .payload
`;

const OPTIONS = {
  ...STORE_OPTIONS,
  ...HELP_OPTION,
  ...FILTER_OPTIONS,
  after: { type: 'string' },
} as const;

export async function replayCommand(args: readonly string[], out: Output): Promise<number> {
  const { values } = parse('replay', () => parseArgs({ args: [...args], options: OPTIONS, strict: true }));
  if (values.help) {
    await out.write(REPLAY_HELP);
    return 0;
  }
  const { fromMs, toMs, tenantId, types, limit } = filtersOf('replay', values);
  let after;
  if (values.after !== undefined) {
    try {
      after = positionFromString(values.after);
    } catch {
      throw new UsageError('replay', `--after must be a position of 24 hex digits, got \`${values.after}\``);
    }
  }
  const { store, codec } = await openForReading(values);
  const corrupt = new CorruptReport('replay');
  try {
    // What cannot be read is reported and skipped, as bus.replay() does: the rest of the log is still printed.
    for await (const event of readEvents(store, codec, { after, fromMs, toMs, tenantId, types, limit }, corrupt.onCorrupt)) {
      if (!out.open) break;
      await out.line(toSerdeJson(event));
    }
  } finally {
    await store.close();
  }
  return corrupt.exitCode;
}
