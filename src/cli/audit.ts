/** `eventrail audit`: the audit log (the seed's AuditEntry records), one JSON line each. */
import { parseArgs } from 'node:util';
import { readAuditEntries } from '../store/read.js';
import { toSerdeJson } from '../event/serde-json.js';
import { FILTER_OPTIONS, HELP_OPTION, STORE_OPTIONS, filtersOf, parse, uuid } from './args.js';
import { CORRUPT_HELP, CorruptReport } from './corrupt.js';
import type { Output } from './output.js';
import { openForReading } from './store.js';

export const AUDIT_HELP = `Usage: eventrail audit [options]

Prints audit entries (written for the event types in the config's
audit.eventTypes) in store order as newline-delimited JSON: the seed's
AuditEntry { audit_id, event_id, event_type, timestamp, payload, metadata }.

${CORRUPT_HELP}
Options:
  --store PATH     the lmdb store folder (default: the config's store, else ./eventrail-data)
  --config FILE    a JSON config file (its store and prefix are used)
  --from TIME      entries whose event timestamp is at or after TIME (RFC 3339, a date, or ms since the epoch)
  --to TIME        entries whose event timestamp is before TIME
  --tenant UUID    only this tenant's entries
  --user UUID      only this user's entries (metadata.user_id)
  --type TYPE      only these event types (repeat, or comma-separate; Custom:NAME for custom types)
  --limit N        at most N entries
  -h, --help       this help

Example:
  eventrail audit --store ./eventrail-data --user 0b6f... --from 2024-05-01
`;

const OPTIONS = {
  ...STORE_OPTIONS,
  ...HELP_OPTION,
  ...FILTER_OPTIONS,
  user: { type: 'string' },
} as const;

export async function auditCommand(args: readonly string[], out: Output): Promise<number> {
  const { values } = parse('audit', () => parseArgs({ args: [...args], options: OPTIONS, strict: true }));
  if (values.help) {
    await out.write(AUDIT_HELP);
    return 0;
  }
  const { fromMs, toMs, tenantId, types, limit } = filtersOf('audit', values);
  const userId = uuid('audit', 'user', values.user);
  const { store, codec } = await openForReading(values);
  const corrupt = new CorruptReport('audit');
  try {
    // An audit block, an audited event or an entry the store cannot read is reported and skipped, as bus.audit.query() does.
    for await (const entry of readAuditEntries(store, codec, { fromMs, toMs, tenantId, userId, types, limit }, corrupt.onCorrupt)) {
      if (!out.open) break;
      await out.line(toSerdeJson(entry));
    }
  } finally {
    await store.close();
  }
  return corrupt.exitCode;
}
