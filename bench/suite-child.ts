/**
 * Entry of the child process that runs one suite of the bench (see run.ts):
 * `node suite-child.js SUITE JSON`. Each suite gets a fresh process: its
 * figures do not depend on what another suite loaded or left on the heap
 * (BullMQ's ioredis, say, slows V8's string paths for the rest of a
 * process). Progress goes to stderr; the result to the parent as one IPC
 * message.
 */
import { TempFolders } from '../src/cli/sweep/temp.js';
import { syntheticInputs } from '../src/cli/sweep/inputs.js';
import { FULL_SETTINGS, QUICK_SETTINGS } from '../src/cli/sweep/measure.js';
import { Progress } from '../src/cli/sweep/progress.js';
import { runTune } from '../src/cli/sweep/tune.js';
import { killRedisServers } from './peers/redis-server.js';
import type { SuiteName } from './results.js';
import { runInterleaved } from './scenario.js';
import { planSuite, type SuiteChildOptions, type SuiteOutcome } from './suites.js';

const [suite, json] = process.argv.slice(2) as [Exclude<SuiteName, 'memory' | 'cluster'>, string];
const options = JSON.parse(json) as SuiteChildOptions;
const progress = new Progress(undefined, options.firstStep);
progress.total = options.totalSteps;
const folders = new TempFolders();
const interrupted = (signal: NodeJS.Signals) => {
  killRedisServers();
  folders.removeAll();
  process.kill(process.pid, signal);
};
process.once('SIGINT', interrupted);
process.once('SIGTERM', interrupted);

let outcome: SuiteOutcome;
try {
  if (suite === 'sweep') {
    const report = await runTune({ quick: options.quick, events: options.events }, progress);
    outcome = { kind: 'sweep', report };
  } else {
    const inputs = syntheticInputs(options.events, ['UserLoggedIn']);
    const planned = await planSuite(suite, { quick: options.quick, inputs, folder: (label) => folders.make(label) });
    const scenarios = await runInterleaved(planned.scenarios, options.quick ? QUICK_SETTINGS : FULL_SETTINGS, options.rounds, progress);
    outcome = { kind: 'scenarios', scenarios, ratios: planned.ratios };
  }
} finally {
  folders.removeAll();
}
await new Promise<void>((resolve) => process.send!(outcome, () => resolve()));
process.disconnect();
