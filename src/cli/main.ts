#!/usr/bin/env node
/**
 * The `eventrail` command. Exit codes: 0 done, 1 the command failed (a
 * missing store, a scenario that failed), 2 a usage error (an unknown flag,
 * a bad value, a bad config file), 3 done but corrupt stored values were
 * skipped (each reported on stderr; see corrupt.ts).
 */
import { ConfigFileError, EventrailError, InvalidOptionsError } from '../errors.js';
import { UsageError } from './args.js';
import { auditCommand } from './audit.js';
import { BenchError, benchCommand } from './bench.js';
import { deadLettersCommand } from './dead-letters.js';
import { emitCommand } from './emit.js';
import { Output } from './output.js';
import { replayCommand } from './replay.js';
import { statsCommand } from './stats.js';
import { CommandError } from './store.js';
import { eventrailVersion } from './version.js';

const COMMANDS: Record<string, (args: readonly string[], out: Output) => Promise<number>> = {
  bench: benchCommand,
  replay: replayCommand,
  audit: auditCommand,
  'dead-letters': deadLettersCommand,
  stats: statsCommand,
  emit: emitCommand,
};

export const MAIN_HELP = `Usage: eventrail <command> [options]

Commands:
  bench          tune pool size, batch size and lanes for your consumers
  replay         print stored events as newline-delimited JSON (filters: --from --to --tenant --type)
  audit          print the audit log (filters: --from --to --tenant --user --type)
  dead-letters   list or redrive dead letters
  stats          event counts by type, consumer groups (lag, lease owners), dead letters, store size
  emit           emit events read as newline-delimited JSON from stdin, printing receipts

replay, audit, dead-letters and stats read the store of --store PATH (an lmdb
store folder) or of --config FILE (a JSON config file, as createBus() reads);
dead-letters redrive needs --config for the consumers. bench takes --config to
tune your consumers, and --store only with --from-store. Every command takes
--help; \`eventrail help COMMAND\` is the same.

Exit codes: 0 done, 1 the command failed, 2 a usage error, 3 done but stored
values that cannot be decoded were skipped (replay, audit, dead-letters, stats:
each is reported on stderr with its code, stdout keeps only what was read).

Start here:
  npx eventrail bench --quick
`;

export async function main(argv: readonly string[], out = new Output()): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write(MAIN_HELP);
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? args[0] : undefined;
    if (topic !== undefined && Object.hasOwn(COMMANDS, topic)) return COMMANDS[topic]!(['--help'], out);
    if (topic !== undefined) {
      process.stderr.write(`eventrail help: unknown command \`${topic}\`\n\n${MAIN_HELP}`);
      return 2;
    }
    await out.write(MAIN_HELP);
    return 0;
  }
  if (command === '--version' || command === '-v') {
    await out.line(eventrailVersion());
    return 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run === undefined) {
    process.stderr.write(`eventrail: unknown command \`${command}\`\n\n${MAIN_HELP}`);
    return 2;
  }
  try {
    const code = await run(args, out);
    await out.end();
    return code;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`eventrail ${err.command}: ${err.message}\nRun \`eventrail ${err.command} --help\` for the options.\n`);
      return 2;
    }
    if (err instanceof InvalidOptionsError || err instanceof ConfigFileError) {
      process.stderr.write(`eventrail ${command}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`eventrail ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    // Expected failures (a missing store, a store error) are told in one line; anything else is a bug worth its stack.
    const expected = err instanceof EventrailError || err instanceof CommandError || err instanceof BenchError;
    if (err instanceof Error && !expected && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
