/**
 * Soak (not run in CI): steady load for SOAK_SECONDS (default 300) at
 * SOAK_RATE events/s (default 20 000) on lmdb, with 1 % of handlers failing
 * (they end as dead letters). Reports throughput over time, RSS and
 * anonymous RSS (Linux's RssAnon: the process's own memory, without lmdb's
 * memory-mapped data file, which RSS counts as the log grows) at start, along
 * the run and at the end, and checks that every acknowledged event was
 * delivered or dead-lettered, and that the dead letters are exactly the
 * acknowledged events the consumer always fails.
 *
 *   node build/bench/soak.bench.js [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { anonRss } from './memory.js';
import { createBus } from '../src/index.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 300);
const rate = Number(process.env.SOAK_RATE ?? 20_000);
const MiB = 2 ** 20;
const folder = mkdtempSync(join(tmpdir(), 'eventrail-soak-'));
const maxEvents = Math.ceil(seconds * rate * 1.1) + 1000;
/** How the consumer (consumers/soak.ts) decides: these seqs fail every attempt, so they must end as dead letters. */
const alwaysFails = (seq: number) => seq % 100 === 0;
const maxAttempts = 3;
const acked = new Uint8Array(maxEvents);
const delivered = new Uint8Array(maxEvents);
let deliveredCount = 0;
/** Deliveries of a seq already delivered (delivery is at least once: a worker fault would cause some). */
let deliveredAgain = 0;

const channel = new BroadcastChannel('eventrail-soak');
channel.onmessage = (message) => {
  for (const seq of (message as { data: number[] }).data) {
    if (delivered[seq] === 0) deliveredCount++;
    else deliveredAgain++;
    delivered[seq] = 1;
  }
};

/** Linux's RssAnon in whole MiB, or null where /proc is not there. */
function anonRssMiB(): number | null {
  const mib = anonRss();
  return mib === null ? null : Math.round(mib);
}

const bus = await createBus({
  store: { kind: 'lmdb', path: folder },
  consumers: [fileURLToPath(new URL('./consumers/soak.js', import.meta.url))],
  delivery: { maxAttempts, backoff: { initialMs: 5, maxMs: 50 } },
  backpressure: { maxPending: 50_000 },
});

const rssStart = process.memoryUsage.rss() / MiB;
const anonRssStart = anonRssMiB();
const heapStart = process.memoryUsage().heapUsed / MiB;
const timeline: Array<{
  second: number;
  emittedPerSec: number;
  deliveredPerSec: number;
  rssMiB: number;
  anonRssMiB: number | null;
  heapUsedMiB: number;
  pending: number;
}> = [];
let seq = 0;
let ackedCount = 0;
let rejected = 0;
const started = performance.now();
let lastMark = { at: started, emitted: 0, delivered: 0 };
const tick = 10; // ms between bursts
while (performance.now() - started < seconds * 1000) {
  const due = Math.floor(((performance.now() - started) / 1000) * rate);
  const burst: Promise<void>[] = [];
  while (seq < due && seq < maxEvents) {
    const mine = seq++;
    burst.push(
      bus.emit({ event_type: 'SessionExtended', payload: { seq: mine }, metadata: { source: 'soak', user_id: null } }).then(
        () => {
          acked[mine] = 1;
          ackedCount++;
        },
        () => {
          rejected++;
        },
      ),
    );
  }
  await Promise.race([Promise.all(burst), sleep(tick)]);
  const now = performance.now();
  if (now - lastMark.at >= 10_000) {
    const dt = (now - lastMark.at) / 1000;
    timeline.push({
      second: Math.round((now - started) / 1000),
      emittedPerSec: Math.round((seq - lastMark.emitted) / dt),
      deliveredPerSec: Math.round((deliveredCount - lastMark.delivered) / dt),
      // RSS includes lmdb's memory-mapped data file, which grows with the log; anonymous RSS and the JS heap must not.
      rssMiB: Math.round(process.memoryUsage.rss() / MiB),
      anonRssMiB: anonRssMiB(),
      heapUsedMiB: Math.round(process.memoryUsage().heapUsed / MiB),
      pending: bus.pending,
    });
    process.stderr.write(`soak: ${JSON.stringify(timeline[timeline.length - 1])}\n`);
    lastMark = { at: now, emitted: seq, delivered: deliveredCount };
  }
}
await bus.flush();
// Every accepted event is now handled or dead-lettered, and dead letters are durable; only the consumer's
// BroadcastChannel reports may still be on their way. Wait until each acknowledged event is accounted for
// (delivered or dead-lettered), or a generous deadline, and say which.
const deadLetters = await bus.deadLetters.list();
const dead = new Set(deadLetters.map((d) => (d.event.payload as { seq: number }).seq));
const unaccounted = () => {
  let n = 0;
  for (let s = 0; s < seq; s++) if (acked[s] === 1 && delivered[s] === 0 && !dead.has(s)) n++;
  return n;
};
const settleStarted = performance.now();
const settleDeadlineMs = 30_000;
let lost = unaccounted();
while (lost > 0 && performance.now() - settleStarted < settleDeadlineMs) {
  await sleep(20);
  lost = unaccounted();
}
const settled = lost === 0 ? 'every acknowledged event accounted for' : `deadline (${settleDeadlineMs} ms) passed with ${lost} unaccounted`;

// The expected dead letters: exactly the acknowledged events the consumer always fails, each after maxAttempts attempts.
let expectedDeadLetters = 0;
let missingDeadLetters = 0;
for (let s = 0; s < seq; s++) {
  if (acked[s] === 1 && alwaysFails(s)) {
    expectedDeadLetters++;
    if (!dead.has(s)) missingDeadLetters++;
  }
}
const unexpectedDeadLetters = [...dead].filter((s) => !alwaysFails(s) || acked[s] !== 1).length;
const deadLetterAttempts: Record<string, number> = {};
for (const d of deadLetters) deadLetterAttempts[d.attempts] = (deadLetterAttempts[d.attempts] ?? 0) + 1;
let deliveredFailing = 0;
for (let s = 0; s < seq; s += 100) if (delivered[s] === 1) deliveredFailing++;
const deadLettersOk =
  missingDeadLetters === 0 &&
  unexpectedDeadLetters === 0 &&
  deadLetters.length === dead.size &&
  deliveredFailing === 0 &&
  Object.keys(deadLetterAttempts).every((n) => Number(n) === maxAttempts);

const report = {
  suite: 'soak',
  seconds,
  targetRate: rate,
  emitted: seq,
  acknowledged: ackedCount,
  rejected,
  delivered: deliveredCount,
  deliveredAgain,
  deadLetters: deadLetters.length,
  expectedDeadLetters,
  missingDeadLetters,
  unexpectedDeadLetters,
  /** How many dead letters gave up after each number of attempts: all at maxAttempts. */
  deadLetterAttempts,
  maxAttempts,
  lostAcknowledged: lost,
  settled,
  settleMs: Math.round(performance.now() - settleStarted),
  rssStartMiB: Math.round(rssStart),
  rssEndMiB: Math.round(process.memoryUsage.rss() / MiB),
  anonRssStartMiB: anonRssStart,
  anonRssEndMiB: anonRssMiB(),
  heapUsedStartMiB: Math.round(heapStart),
  heapUsedEndMiB: Math.round(process.memoryUsage().heapUsed / MiB),
  timeline,
};
await bus.close();
channel.close();
rmSync(folder, { recursive: true, force: true });
console.log(JSON.stringify(report, null, 2));
const i = process.argv.indexOf('--json');
if (i >= 0 && process.argv[i + 1]) writeFileSync(process.argv[i + 1]!, JSON.stringify(report, null, 2) + '\n');
if (lost > 0 || !deadLettersOk) process.exitCode = 1;
