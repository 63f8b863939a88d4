/** The SVG chart writer: what it writes parses as XML, holds what was given, and scales its axes sensibly. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { benchChartSvg, nothingToChart } from '../bench/chart.js';
import type { BenchReport, MeasuredScenario, SweepResult } from '../bench/results.js';
import { compactNumber, escapeXml, lineChartSvg, linearTicks, logTicks, messageSvg, type LineChart } from '../bench/svg.js';
import { parseSvg } from './fixtures/cli-svg.js';

const chart = (over: Partial<LineChart> = {}): LineChart => ({
  title: 'events/s <against> threads & "more"',
  xLabel: 'threads',
  yLabel: 'events/s',
  series: [
    {
      name: 'maxBatch 256',
      points: [
        { x: 1, y: 100_000 },
        { x: 2, y: 150_000 },
        { x: 4, y: 140_000 },
      ],
    },
    {
      name: "maxBatch 1024 <'&'>",
      points: [
        { x: 4, y: 180_000 },
        { x: 1, y: 120_000 },
        { x: 2, y: 170_000 },
      ],
    },
  ],
  references: [{ name: 'peer', y: 60_000 }],
  ...over,
});

describe('lineChartSvg', () => {
  test('writes valid SVG with one line per series, a marker per point, and a legend', () => {
    const elements = parseSvg(lineChartSvg(chart()));
    const root = elements[0]!;
    assert.equal(root.tag, 'svg');
    assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
    assert.match(root.attrs.viewBox ?? '', /^0 0 \d+ \d+$/);
    assert.equal(elements.filter((e) => e.tag === 'polyline').length, 2);
    const markers = elements.filter((e) => e.tag === 'circle' && e.parent === 'g' && e.attrs.r === '4');
    assert.equal(markers.length, 6);
    assert.equal(elements.filter((e) => e.tag === 'line' && e.attrs.class === 'reference').length, 1);
    const texts = elements.filter((e) => e.tag === 'text').map((e) => e.text);
    assert.ok(texts.includes('events/s <against> threads & "more"'), 'the title, unescaped by the parser');
    assert.ok(texts.includes("maxBatch 1024 <'&'>"));
    assert.ok(texts.includes('peer (60k)'));
    for (const x of ['1', '2', '4']) assert.ok(texts.includes(x), `x tick ${x}`);
  });

  test('points are drawn left to right, higher values higher up', () => {
    const elements = parseSvg(lineChartSvg(chart()));
    const line = elements.filter((e) => e.tag === 'polyline')[1]!;
    const points = line.attrs.points!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
    assert.equal(points.length, 3);
    assert.ok(points[0]![0] < points[1]![0] && points[1]![0] < points[2]![0]);
    // 120k, 170k, 180k: SVG y grows downwards.
    assert.ok(points[0]![1] > points[1]![1] && points[1]![1] > points[2]![1]);
  });

  test('the y axis goes logarithmic when values span more than 20×, and stays linear otherwise', () => {
    const linear = parseSvg(lineChartSvg(chart()))
      .filter((e) => e.tag === 'text')
      .map((e) => e.text);
    assert.ok(linear.includes('events/s'));
    assert.ok(linear.includes('0'));
    const log = parseSvg(lineChartSvg(chart({ references: [{ name: 'slow peer', y: 900 }] })))
      .filter((e) => e.tag === 'text')
      .map((e) => e.text);
    assert.ok(log.includes('events/s (log scale)'));
    assert.ok(log.includes('100') && log.includes('1M'), log.join(' | '));
  });

  test('a series of one point gets a marker and no line; long legend names are cut with a tooltip', () => {
    const name = 'a very long series name that cannot fit in the legend column at all';
    const elements = parseSvg(lineChartSvg(chart({ series: [{ name, points: [{ x: 1, y: 5 }] }], references: [] })));
    assert.equal(elements.filter((e) => e.tag === 'polyline').length, 0);
    assert.equal(elements.filter((e) => e.tag === 'circle' && e.attrs.r === '4').length, 1);
    const legend = elements.find((e) => e.tag === 'text' && e.text.endsWith('…'));
    assert.ok(legend, 'a cut legend entry');
    assert.ok(elements.some((e) => e.tag === 'title' && e.text === name));
  });

  test('rejects charts with nothing to draw, values that are not finite, or no room', () => {
    assert.throws(() => lineChartSvg(chart({ series: [], references: [] })), RangeError);
    assert.throws(() => lineChartSvg(chart({ series: [{ name: 'x', points: [{ x: 1, y: NaN }] }] })), /finite/);
    assert.throws(() => lineChartSvg(chart({ width: 200 })), /no room/);
  });
});

describe('axis helpers', () => {
  test('linear ticks are round and cover the maximum', () => {
    assert.deepEqual(linearTicks(950), [0, 200, 400, 600, 800, 1000]);
    assert.deepEqual(linearTicks(180_000), [0, 50_000, 100_000, 150_000, 200_000]);
    assert.deepEqual(linearTicks(1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(linearTicks(0), [0, 1]);
  });

  test('log ticks are powers of ten around the range', () => {
    assert.deepEqual(logTicks(900, 1_200_000), [100, 1000, 10_000, 100_000, 1_000_000, 10_000_000]);
    assert.deepEqual(logTicks(5, 5), [1, 10]);
  });

  test('numbers and text', () => {
    assert.equal(compactNumber(1_234_567), '1.23M');
    assert.equal(compactNumber(350_000), '350k');
    assert.equal(compactNumber(900), '900');
    assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });
});

describe('benchChartSvg', () => {
  const timing = { samples: 10, medianMs: 100, p99Ms: 120, meanMs: 105, minMs: 90, maxMs: 125 };
  const sweep = (threads: number, maxBatch: number, eventsPerSec: number): SweepResult => ({
    threads,
    maxBatch,
    lanes: 8,
    status: 'ok',
    events: 20_000,
    timing,
    eventsPerSec,
    eventsPerSecP99: eventsPerSec * 0.8,
    latency: { p50Ms: 2, p99Ms: 9, atEventsPerSec: eventsPerSec / 2, batches: 100 },
    failedDeliveries: 0,
  });
  const scenario = (id: string, name: string, eventsPerSec: number): MeasuredScenario => ({
    id,
    suite: 'durable',
    name,
    role: 'peer',
    status: 'ok',
    events: 2000,
    timing,
    eventsPerSec,
    eventsPerSecP99: eventsPerSec,
    extras: {},
  });
  const report = {
    config: { quick: true, store: 'lmdb, in a temporary folder' },
    machine: { cores: 2, cpuModel: 'Test CPU', node: 'v20.0.0', loadAverage: { start: [1.5], end: [1.6] } },
    sweep: [sweep(1, 256, 100_000), sweep(2, 256, 150_000), sweep(1, 1024, 120_000), sweep(2, 1024, 170_000)],
    scenarios: [scenario('durable.literal', 'literal', 8_000), scenario('durable.literal-tuned', 'literal tuned', 20_000)],
  } as unknown as BenchReport;

  test('one line per batch size against threads, the peers as reference lines', () => {
    const elements = parseSvg(benchChartSvg(report));
    assert.equal(elements.filter((e) => e.tag === 'polyline').length, 2);
    const texts = elements.filter((e) => e.tag === 'text').map((e) => e.text);
    assert.ok(texts.includes('maxBatch 256') && texts.includes('maxBatch 1024'));
    assert.ok(texts.includes('pool.maxThreads'));
    assert.equal(elements.filter((e) => e.tag === 'line' && e.attrs.class === 'reference').length, 2);
    assert.ok(texts.some((t) => t.startsWith('put + run() per event')));
  });

  test('with nothing to chart (codec or store alone, a sweep that all failed), a valid SVG that says so', () => {
    const codecOnly = {
      ...report,
      config: { ...report.config, suites: ['codec', 'store'] },
      sweep: [],
      scenarios: [
        { ...scenario('codec.event-writer-event', 'event writer', 400_000), suite: 'codec', role: 'eventrail' },
        { ...scenario('store.group-commit', 'group commit', 150_000), suite: 'store', role: 'eventrail' },
      ],
    } as unknown as BenchReport;
    assert.match(nothingToChart(codecOnly) ?? '', /no sweep, and no dispatch, durable or peers scenario/);
    const elements = parseSvg(benchChartSvg(codecOnly));
    assert.equal(elements[0]!.tag, 'svg');
    assert.equal(elements.filter((e) => e.tag === 'polyline' || e.tag === 'circle' || e.attrs.class === 'reference').length, 0);
    const message = elements.find((e) => e.attrs.class === 'message');
    assert.match(message?.text ?? '', /^nothing to chart: no sweep.*\(suites run: codec, store\)$/);

    const allFailed = {
      ...report,
      config: { ...report.config, suites: ['sweep'] },
      scenarios: [],
      sweep: report.sweep.map((r) => ({ ...r, status: 'failed', error: 'boom' })),
    } as unknown as BenchReport;
    assert.match(nothingToChart(allFailed) ?? '', /every combination of the sweep failed/);
    assert.match(
      parseSvg(benchChartSvg(allFailed)).find((e) => e.attrs.class === 'message')?.text ?? '',
      /every combination of the sweep failed/,
    );
    assert.equal(nothingToChart(report), null);
  });
});

describe('messageSvg', () => {
  test('writes valid SVG with the title, subtitle and message, escaped', () => {
    const elements = parseSvg(messageSvg('a <title> & more', 'sub "title"', "nothing to chart: 'x' < y"));
    assert.equal(elements[0]!.tag, 'svg');
    assert.equal(elements[0]!.attrs.viewBox, '0 0 820 480');
    const texts = elements.filter((e) => e.tag === 'text').map((e) => e.text);
    assert.deepEqual(texts, ['a <title> & more', 'sub "title"', "nothing to chart: 'x' < y"]);
  });
});
