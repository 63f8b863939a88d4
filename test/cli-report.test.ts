/** The pieces `eventrail bench` reports with: latency from the bus's histogram, the best setting, the rendered tables. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseHistogram, quantile, subtract } from '../src/cli/sweep/latency.js';
import { renderMarkdown } from '../bench/markdown.js';
import { quantileOf, summarize } from '../src/cli/sweep/measure.js';
import type { BenchReport, SweepResult } from '../bench/results.js';
import { bestSetting, combinations, withCombination } from '../src/cli/sweep/sweep.js';
import { renderText } from '../bench/text.js';

const text = (counts: Record<string, number>) =>
  [
    '# HELP eventrail_emit_to_handled_seconds x',
    '# TYPE eventrail_emit_to_handled_seconds histogram',
    ...Object.entries(counts).map(([le, n]) => `eventrail_emit_to_handled_seconds_bucket{le="${le}"} ${n}`),
    'eventrail_emit_to_handled_seconds_sum 1',
    `eventrail_emit_to_handled_seconds_count ${counts['+Inf']}`,
    'eventrail_batch_size_bucket{le="1"} 99',
  ].join('\n');

describe('latency from the histogram', () => {
  test('parses the buckets, subtracts snapshots, and interpolates quantiles within buckets', () => {
    const before = parseHistogram(text({ '0.001': 0, '0.005': 10, '0.01': 10, '+Inf': 10 }));
    const after = parseHistogram(text({ '0.001': 50, '0.005': 110, '0.01': 150, '+Inf': 150 }));
    assert.deepEqual(before.bounds, [0.001, 0.005, 0.01, Infinity]);
    const h = subtract(after, before);
    assert.deepEqual(h.counts, [50, 100, 140, 140]);
    // rank 70 of 140: 20 of the 50 in (1 ms, 5 ms]: 1 + 4 × 20/50 ms.
    assert.ok(Math.abs(quantile(h, 0.5) - 0.0026) < 1e-12);
    // rank 138.6: 38.6 of the 40 in (5 ms, 10 ms].
    assert.ok(Math.abs(quantile(h, 0.99) - (0.005 + 0.005 * (38.6 / 40))) < 1e-12);
  });

  test('the +Inf bucket reports the highest finite bound; no observations is NaN', () => {
    const h = parseHistogram(text({ '0.001': 0, '0.01': 1, '+Inf': 10 }));
    assert.equal(quantile(h, 0.99), 0.01);
    assert.ok(Number.isNaN(quantile(parseHistogram(text({ '0.001': 0, '+Inf': 0 })), 0.5)));
  });
});

describe('timing statistics', () => {
  test('median and p99 of iteration times, interpolated between ranks', () => {
    assert.equal(quantileOf([1, 2, 3, 4], 0.5), 2.5);
    const t = summarize([5, 1, 3, 2, 4]);
    assert.deepEqual(
      { ...t, p99Ms: Math.round(t.p99Ms * 100) / 100 },
      { samples: 5, medianMs: 3, p99Ms: 4.96, meanMs: 3, minMs: 1, maxMs: 5 },
    );
  });
});

const timing = { samples: 5, medianMs: 10, p99Ms: 12, meanMs: 10, minMs: 9, maxMs: 12 };
const result = (threads: number, maxBatch: number, lanes: number, eventsPerSec: number, p99Ms: number): SweepResult => ({
  threads,
  maxBatch,
  lanes,
  status: 'ok',
  events: 1000,
  timing,
  eventsPerSec,
  eventsPerSecP99: eventsPerSec,
  latency: { p50Ms: p99Ms / 2, p99Ms, atEventsPerSec: eventsPerSec / 2, batches: 10 },
  failedDeliveries: 0,
});

describe('the sweep', () => {
  test('combinations cover the grid in order', () => {
    assert.deepEqual(combinations({ threads: [1, 2], maxBatch: [256], lanes: [8, 32] }), [
      { threads: 1, maxBatch: 256, lanes: 8 },
      { threads: 1, maxBatch: 256, lanes: 32 },
      { threads: 2, maxBatch: 256, lanes: 8 },
      { threads: 2, maxBatch: 256, lanes: 32 },
    ]);
  });

  test("a combination's options keep the user's and raise maxPending when a batch would not fit", () => {
    const o = withCombination(
      { pool: { idleTimeout: 5 }, dispatch: { lingerMs: 3 }, backpressure: { maxPending: 500 } },
      { threads: 2, maxBatch: 1024, lanes: 16 },
    );
    assert.deepEqual(o.pool, { idleTimeout: 5, maxThreads: 2, minThreads: 2 });
    assert.deepEqual(o.dispatch, { lingerMs: 3, maxBatch: 1024, lanes: 16 });
    assert.deepEqual(o.backpressure, { maxPending: 1024 });
  });

  test('the best setting: the highest events/s, or among those within 5 % of it the lowest p99 latency', () => {
    assert.equal(bestSetting([]), null);
    const clear = bestSetting([result(1, 256, 8, 100, 5), result(2, 256, 8, 200, 9), result(2, 1024, 8, 150, 3)])!;
    assert.deepEqual(clear.config, { pool: { maxThreads: 2 }, dispatch: { maxBatch: 256, lanes: 8 } });
    assert.equal(clear.why, 'the highest events/s');
    const tied = bestSetting([result(1, 256, 8, 100, 5), result(2, 256, 8, 200, 9), result(2, 1024, 8, 195, 3)])!;
    assert.deepEqual([tied.threads, tied.maxBatch], [2, 1024]);
    assert.match(tied.why, /within 5 % of the highest/);
  });
});

describe('rendering', () => {
  const report = {
    schema: 'eventrail-bench/1',
    startedAt: '2026-01-01T00:00:00.000Z',
    seconds: 12.5,
    machine: {
      cores: 2,
      cpuModel: 'Test CPU',
      memoryGiB: 4,
      freeMemoryGiB: 2,
      node: 'v20.0.0',
      platform: 'linux-x64',
      loadAverage: { start: [1, 1, 1], end: [2, 1, 1] },
    },
    packages: { eventrail: '0.1.0' },
    config: {
      quick: true,
      suites: ['dispatch', 'sweep'],
      events: 1000,
      settings: { timeMs: 250, minIterations: 5, warmupMs: 100, warmupIterations: 2, rounds: 1 },
      grid: { threads: [1, 2], maxBatch: [256], lanes: [8] },
      consumers: ['/x/a.js'],
      source: 'synthetic',
      eventTypes: ['UserLoggedIn'],
      configFile: null,
      store: 'lmdb, in a temporary folder',
      options: null,
    },
    scenarios: [
      {
        id: 'dispatch.eventrail',
        suite: 'dispatch',
        name: 'eventrail | fast',
        role: 'eventrail',
        status: 'ok',
        events: 1000,
        timing,
        eventsPerSec: 100_000,
        eventsPerSecP99: 83_333,
        extras: {},
      },
      { id: 'dispatch.per-event', suite: 'dispatch', name: 'per event', role: 'peer', status: 'skipped', reason: 'not here' },
    ],
    ratios: [{ name: 'a / b', of: 'dispatch.eventrail', to: 'dispatch.per-event', value: null, target: 10, met: null }],
    sweep: [result(1, 256, 8, 100_000, 4), result(2, 256, 8, 150_000, 6)],
    best: bestSetting([result(1, 256, 8, 100_000, 4), result(2, 256, 8, 150_000, 6)]),
    memory: { overload: null, overloadDurable: null, replay: null },
    notes: ['per event was skipped: not here'],
  } as BenchReport;

  test('text: the tables, the best setting and a snippet that parses', () => {
    const out = renderText(report);
    assert.match(out, /Dispatch: store none/);
    assert.match(out, /eventrail \| fast\s+100,000\s+83,333/);
    assert.match(out, /per event \(peer\)\s+skipped/);
    assert.match(out, /a \/ b\s+n\/a\s+≥ 10\.0×/);
    assert.match(out, /Best setting: 2 thread\(s\), maxBatch 256, 8 lanes: 150,000 events\/s/);
    const snippet = /Paste into your config file:\n(\{[\s\S]*?\n\})/.exec(out)?.[1];
    assert.deepEqual(JSON.parse(snippet!), { pool: { maxThreads: 2 }, dispatch: { maxBatch: 256, lanes: 8 } });
    assert.match(out, /- per event was skipped: not here/);
  });

  test('Markdown: well-formed tables (pipes in names escaped), the chart link and the snippet', () => {
    const md = renderMarkdown(report, { chart: 'bench.svg' });
    assert.match(md, /!\[events\/s against threads\]\(bench\.svg\)/);
    assert.match(md, /\| eventrail \\\| fast \| 100,000 \|/);
    for (const table of md.split('\n\n').filter((b) => b.startsWith('### '))) {
      const rows = table.split('\n').slice(2);
      const columns = rows.map((r) => r.replace(/\\\|/g, '').split('|').length);
      assert.ok(
        columns.every((c) => c === columns[0]),
        `ragged table:\n${table}`,
      );
    }
    assert.match(md, /```json\n\{\n {2}"pool": \{\n {4}"maxThreads": 2/);
  });
});
