/** `eventrail emit`: events as newline-delimited JSON on stdin, stored (and delivered) by a bus; one receipt per line. */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createBus } from '../bus/bus.js';
import type { Receipt } from '../bus/intake.js';
import { EventrailError } from '../errors.js';
import { HELP_OPTION, STORE_OPTIONS, parse } from './args.js';
import type { Output } from './output.js';
import { optionsOf, storeOptionsOf } from './store.js';

export const EMIT_HELP = `Usage: eventrail emit [options] < events.ndjson

Reads events from stdin, one JSON object per line (the seed's Event as serde
writes it, or emit() input: event_id, timestamp and correlation_id may be left
out), emits each, and prints its receipt as one JSON line
{"line":N,"event_id":...,"position":...,"duplicate":false} once it is durable.
Integers beyond 2^53 are kept exactly (as bigints); one beyond 64 bits is
rejected (ERR_EVENTRAIL_INEXACT_NUMBER), never rounded. A line that is
rejected is reported on stderr with its number and code; the others are still
emitted, and the exit code is then 1. Blank lines are skipped.

Options:
  --store PATH     the lmdb store folder (default: the config's store, else ./eventrail-data)
  --config FILE    a JSON config file (its store, limits and consumers are used)
  -h, --help       this help

Example:
  my-rust-producer | eventrail emit --config eventrail.json
`;

const OPTIONS = { ...STORE_OPTIONS, ...HELP_OPTION } as const;
const IN_FLIGHT = 256;

export async function emitCommand(args: readonly string[], out: Output, input: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const { values } = parse('emit', () => parseArgs({ args: [...args], options: OPTIONS, strict: true }));
  if (values.help) {
    await out.write(EMIT_HELP);
    return 0;
  }
  const options = optionsOf(values);
  const store = storeOptionsOf(values, options);
  const bus = await createBus({ ...structuredClone(options), store: { ...store } } as Parameters<typeof createBus>[0]);
  bus.on('warning', (message) => process.stderr.write(`warning: ${message}\n`));
  let failed = 0;
  type Outcome = { line: number; receipt?: Receipt; error?: unknown };
  // Several emits in flight, so that they share group commits; receipts are still printed in line order.
  const inFlight: Promise<Outcome>[] = [];
  const report = async (outcome: Outcome): Promise<void> => {
    if (outcome.receipt !== undefined) return out.line(JSON.stringify({ line: outcome.line, ...outcome.receipt }));
    const err = outcome.error;
    if (!(err instanceof EventrailError)) throw err;
    failed++;
    process.stderr.write(`eventrail emit: line ${outcome.line}: ${err.code}: ${err.message}\n`);
  };
  try {
    let line = 0;
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      line++;
      if (text.trim() === '') continue;
      const at = line;
      inFlight.push(
        bus.emitJson(text).then(
          (receipt) => ({ line: at, receipt }),
          (error: unknown) => ({ line: at, error }),
        ),
      );
      if (inFlight.length >= IN_FLIGHT) await report(await inFlight.shift()!);
    }
    while (inFlight.length > 0) await report(await inFlight.shift()!);
    await bus.flush();
  } finally {
    await Promise.allSettled(inFlight);
    await bus.close();
  }
  return failed === 0 ? 0 : 1;
}
