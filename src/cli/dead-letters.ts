/** `eventrail dead-letters list|redrive`: deliveries given up after delivery.maxAttempts. */
import { parseArgs } from 'node:util';
import { createBus } from '../bus/bus.js';
import { DeadLetterBox, type DeadLetterFilter } from '../bus/dead-letters.js';
import { recordToSerdeJson } from '../event/serde-json.js';
import { positionToString } from '../store/store.js';
import { HELP_OPTION, STORE_OPTIONS, UsageError, eventTypes, parse, positiveInt, uuid } from './args.js';
import { CORRUPT_HELP, CorruptReport } from './corrupt.js';
import type { Output } from './output.js';
import { CommandError, describeStore, openForReading, optionsOf, storeOptionsOf } from './store.js';

export const DEAD_LETTERS_HELP = `Usage: eventrail dead-letters list [options]
       eventrail dead-letters redrive [options]

list     prints dead letters as newline-delimited JSON, in (consumer, position)
         order: { consumer, position, event, error, attempts, failed_at }.
redrive  starts a bus with the config's consumers, delivers each matching dead
         letter again to the consumer that failed (and only to it), waits until
         they are handled, and prints how many were redriven and how many failed
         again. Stop the service that uses the store first, or redrive from it
         with bus.deadLetters.redrive(): two buses should not share a store.

${CORRUPT_HELP}
Options:
  --store PATH       the lmdb store folder (default: the config's store, else ./eventrail-data)
  --config FILE      a JSON config file (its store; for redrive, also its consumers:
                     redrive needs it)
  --consumer NAME    only this consumer's dead letters
  --tenant UUID      only this tenant's events
  --type TYPE        only these event types (repeat, or comma-separate; Custom:NAME for custom types)
  --event-id UUID    only this event
  --limit N          at most N dead letters
  -h, --help         this help
`;

const OPTIONS = {
  ...STORE_OPTIONS,
  ...HELP_OPTION,
  consumer: { type: 'string' },
  tenant: { type: 'string' },
  type: { type: 'string', multiple: true },
  'event-id': { type: 'string' },
  limit: { type: 'string' },
} as const;

export async function deadLettersCommand(args: readonly string[], out: Output): Promise<number> {
  const { values, positionals } = parse(
    'dead-letters',
    () => parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: true }),
    1,
  );
  if (values.help) {
    await out.write(DEAD_LETTERS_HELP);
    return 0;
  }
  const action = positionals[0];
  if (action !== 'list' && action !== 'redrive') {
    throw new UsageError(
      'dead-letters',
      action === undefined ? 'say list or redrive' : `unknown action \`${action}\`: say list or redrive`,
    );
  }
  if (values.consumer !== undefined && values.consumer.length === 0) throw new UsageError('dead-letters', '--consumer needs a name');
  const filter: DeadLetterFilter = {
    consumer: values.consumer,
    tenantId: uuid('dead-letters', 'tenant', values.tenant),
    types: eventTypes('dead-letters', values.type),
    eventId: uuid('dead-letters', 'event-id', values['event-id']),
    limit: positiveInt('dead-letters', 'limit', values.limit),
  };
  const corrupt = new CorruptReport(`dead-letters ${action}`);
  const withReport: DeadLetterFilter = { ...filter, onCorrupt: corrupt.onCorrupt };
  if (action === 'list') await list(values, withReport, out);
  else await redrive(values, withReport, out);
  return corrupt.exitCode;
}

async function list(flags: { store?: string; config?: string }, filter: DeadLetterFilter, out: Output): Promise<void> {
  const { store, codec } = await openForReading(flags);
  try {
    for await (const { record, event } of new DeadLetterBox(store, codec).records(filter)) {
      if (!out.open) break;
      await out.line(
        recordToSerdeJson({
          consumer: record.consumer,
          position: positionToString(record.position),
          event,
          error: record.error,
          attempts: record.attempts,
          failed_at: record.failedAt,
        }),
      );
    }
  } finally {
    await store.close();
  }
}

/** Corrupt dead letters stay where they are: the redrive reports them, and they are not counted as remaining. */
async function redrive(flags: { store?: string; config?: string }, filter: DeadLetterFilter, out: Output): Promise<void> {
  if (flags.config === undefined) {
    throw new UsageError(
      'dead-letters',
      'redrive runs the consumers that failed: give --config FILE with their modules in "consumers" (--store PATH alone only names the store)',
    );
  }
  const options = optionsOf(flags);
  const storeOptions = storeOptionsOf(flags, options);
  if (options.consumers.length === 0)
    throw new CommandError('redrive runs the consumers that failed: give --config FILE with their modules in "consumers"');
  // Opened first so that a missing store is reported as such, not created by the bus.
  const check = await openForReading(flags);
  await check.store.close();
  const bus = await createBus({ ...structuredClone(options), store: { ...storeOptions } } as Parameters<typeof createBus>[0]);
  bus.on('warning', (message) => process.stderr.write(`warning: ${message}\n`));
  try {
    const redriven = await bus.deadLetters.redrive(filter);
    await bus.flush();
    // The redrive has reported each corrupt dead letter once already.
    const again = (await bus.deadLetters.list({ ...filter, limit: undefined, onCorrupt: () => {} })).length;
    await out.line(`redriven ${redriven} dead letter(s) from the ${describeStore(storeOptions)}; ${again} matching dead letter(s) remain`);
  } finally {
    await bus.close();
  }
}
