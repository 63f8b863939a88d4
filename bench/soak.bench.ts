/**
 * Soak (not run in CI): steady load for SOAK_SECONDS (default 300) at
 * SOAK_RATE events/s (default 20 000) on lmdb, with 1 % of handlers failing
 * (they end as dead letters). Reports throughput over time, RSS at start and
 * end, dead letters, and checks that every acknowledged event was delivered or
 * dead-lettered.
 *
 *   node build/bench/soak.bench.js [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus } from '../src/index.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 300);
const rate = Number(process.env.SOAK_RATE ?? 20_000);
const MiB = 2 ** 20;
const folder = mkdtempSync(join(tmpdir(), 'eventrail-soak-'));
const maxEvents = Math.ceil(seconds * rate * 1.1) + 1000;
const acked = new Uint8Array(maxEvents);
const delivered = new Uint8Array(maxEvents);
let deliveredCount = 0;

const channel = new BroadcastChannel('eventrail-soak');
channel.onmessage = (message) => {
  for (const seq of (message as { data: number[] }).data) {
    if (delivered[seq] === 0) deliveredCount++;
    delivered[seq] = 1;
  }
};

const bus = await createBus({
  store: { kind: 'lmdb', path: folder },
  consumers: [fileURLToPath(new URL('./consumers/soak.js', import.meta.url))],
  delivery: { maxAttempts: 3, backoff: { initialMs: 5, maxMs: 50 } },
  backpressure: { maxPending: 50_000 },
});

const rssStart = process.memoryUsage.rss() / MiB;
const heapStart = process.memoryUsage().heapUsed / MiB;
const timeline: Array<{ second: number; emittedPerSec: number; deliveredPerSec: number; rssMiB: number; heapUsedMiB: number; pending: number }> = [];
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
      bus
        .emit({ event_type: 'SessionExtended', payload: { seq: mine }, metadata: { source: 'soak', user_id: null } })
        .then(
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
      rssMiB: Math.round(process.memoryUsage.rss() / MiB),
      // RSS includes lmdb's memory-mapped data file, which grows with the log; the JS heap must not.
      heapUsedMiB: Math.round(process.memoryUsage().heapUsed / MiB),
      pending: bus.pending,
    });
    process.stderr.write(`soak: ${JSON.stringify(timeline[timeline.length - 1])}\n`);
    lastMark = { at: now, emitted: seq, delivered: deliveredCount };
  }
}
await bus.flush();
await sleep(50); // the last BroadcastChannel messages
const deadLetters = await bus.deadLetters.list();
const dead = new Set(deadLetters.map((d) => (d.event.payload as { seq: number }).seq));
let lost = 0;
for (let s = 0; s < seq; s++) if (acked[s] === 1 && delivered[s] === 0 && !dead.has(s)) lost++;
const report = {
  suite: 'soak',
  seconds,
  targetRate: rate,
  emitted: seq,
  acknowledged: ackedCount,
  rejected,
  delivered: deliveredCount,
  deadLetters: dead.size,
  expectedDeadLetters: Math.floor((seq - 1) / 100) + 1,
  lostAcknowledged: lost,
  rssStartMiB: Math.round(rssStart),
  rssEndMiB: Math.round(process.memoryUsage.rss() / MiB),
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
if (lost > 0) process.exitCode = 1;
