/**
 * Emit-to-handled latency from the bus's own histogram,
 * `eventrail_emit_to_handled_seconds` (one observation per dispatched batch:
 * the first emit of the commit holding its oldest event, to every consumer
 * finishing the batch). Two
 * snapshots of the Prometheus text are subtracted, and quantiles are
 * interpolated within buckets as Prometheus' histogram_quantile does.
 */
const METRIC = 'eventrail_emit_to_handled_seconds';

/** Cumulative bucket counts by upper bound (seconds); the last bound is +Inf. */
export interface HistogramSnapshot {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
}

export function parseHistogram(text: string, metric = METRIC): HistogramSnapshot {
  const rows: Array<[number, number]> = [];
  const prefix = `${metric}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (le === undefined || !Number.isFinite(value)) continue;
    rows.push([le === '+Inf' ? Infinity : Number(le), value]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  return { bounds: rows.map((r) => r[0]), counts: rows.map((r) => r[1]) };
}

/** after − before, bucket by bucket. */
export function subtract(after: HistogramSnapshot, before: HistogramSnapshot): HistogramSnapshot {
  return { bounds: after.bounds, counts: after.counts.map((c, i) => c - (before.counts[i] ?? 0)) };
}

export function observations(h: HistogramSnapshot): number {
  return h.counts[h.counts.length - 1] ?? 0;
}

/**
 * The q-quantile (0..1) in seconds, linearly interpolated inside its bucket;
 * in the +Inf bucket, the highest finite bound. NaN with no observations.
 */
export function quantile(h: HistogramSnapshot, q: number): number {
  const total = observations(h);
  if (total === 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < h.counts.length; i++) {
    const count = h.counts[i]!;
    if (count < rank) continue;
    const upper = h.bounds[i]!;
    const lower = i === 0 ? 0 : h.bounds[i - 1]!;
    if (upper === Infinity) return lower;
    const below = i === 0 ? 0 : h.counts[i - 1]!;
    const inBucket = count - below;
    return inBucket === 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return h.bounds[h.bounds.length - 2] ?? NaN;
}
