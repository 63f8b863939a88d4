/**
 * The bus's metrics: one prom-client registry per bus (no process-wide
 * state). Hot-path counts are aggregated per batch by the callers and added
 * here once per batch.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricDelta } from '../protocol.js';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface MetricsSources {
  pending(): number;
  poolUtilization(): number;
  poolThreads(): number;
}

export class BusMetrics {
  readonly registry = new Registry();
  readonly emitted: Counter<'event_type'>;
  readonly duplicates: Counter;
  readonly rejected: Counter<'code'>;
  readonly delivered: Counter<'consumer'>;
  readonly failures: Counter<'consumer'>;
  readonly retries: Counter<'consumer'>;
  readonly deadLetters: Counter<'consumer'>;
  readonly workerErrors: Counter;
  readonly storeErrors: Counter;
  readonly batchSize: Histogram;
  readonly latency: Histogram;
  readonly #consumerMetrics = new Map<string, Counter<string> | Histogram<string>>();
  readonly #invalidMetrics = new Set<string>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.emitted = new Counter({
      name: 'eventrail_events_emitted_total',
      help: 'Events accepted and made durable, by type',
      labelNames: ['event_type'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'eventrail_events_duplicate_total',
      help: 'Emits of an event_id already stored (not stored or delivered again)',
      registers,
    });
    this.rejected = new Counter({
      name: 'eventrail_emits_rejected_total',
      help: 'Emits rejected, by error code',
      labelNames: ['code'],
      registers,
    });
    this.delivered = new Counter({
      name: 'eventrail_deliveries_total',
      help: 'Events handled successfully, by consumer',
      labelNames: ['consumer'],
      registers,
    });
    this.failures = new Counter({
      name: 'eventrail_delivery_failures_total',
      help: 'Failed deliveries (thrown, rejected, timed out, worker lost), by consumer',
      labelNames: ['consumer'],
      registers,
    });
    this.retries = new Counter({
      name: 'eventrail_delivery_retries_total',
      help: 'Deliveries scheduled again after a failure, by consumer',
      labelNames: ['consumer'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'eventrail_dead_letters_total',
      help: 'Deliveries given up after delivery.maxAttempts, by consumer',
      labelNames: ['consumer'],
      registers,
    });
    this.workerErrors = new Counter({
      name: 'eventrail_worker_errors_total',
      help: 'Batches lost to a worker that crashed, exited or was stopped',
      registers,
    });
    this.storeErrors = new Counter({
      name: 'eventrail_store_errors_total',
      help: 'Store transactions that failed',
      registers,
    });
    this.batchSize = new Histogram({
      name: 'eventrail_batch_size',
      help: 'Events per dispatched batch',
      buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384],
      registers,
    });
    this.latency = new Histogram({
      name: 'eventrail_emit_to_handled_seconds',
      help: 'Per dispatched batch: from the first emit() of the commit that holds its oldest event to every consumer finishing the batch (one observation per batch, not per event, to keep it off the hot path)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    new Gauge({
      name: 'eventrail_pending_events',
      help: 'Events accepted and not yet handled by every consumer',
      registers,
      collect() {
        this.set(sources.pending());
      },
    });
    new Gauge({
      name: 'eventrail_pool_utilization',
      help: "piscina's utilization of the worker pool (0..1)",
      registers,
      collect() {
        this.set(sources.poolUtilization());
      },
    });
    new Gauge({
      name: 'eventrail_pool_threads',
      help: 'Worker threads running',
      registers,
      collect() {
        this.set(sources.poolThreads());
      },
    });
  }

  /** Applies the metric deltas a batch's consumers reported. Bad names are skipped, once reported. */
  applyConsumerMetrics(deltas: readonly MetricDelta[], warn: (message: string) => void): void {
    for (const delta of deltas) {
      const labels = delta.labels ?? {};
      const labelNames = Object.keys(labels).sort();
      const id = `${delta.kind}:${delta.name}`;
      if (this.#invalidMetrics.has(id)) continue;
      let metric = this.#consumerMetrics.get(delta.name);
      try {
        if (!METRIC_NAME.test(delta.name) || !labelNames.every((l) => LABEL_NAME.test(l))) {
          throw new Error(`${JSON.stringify(delta.name)} is not a valid Prometheus metric name or has invalid label names`);
        }
        if (metric === undefined) {
          metric =
            delta.kind === 'counter'
              ? new Counter({ name: delta.name, help: `Reported by consumers: ${delta.name}`, labelNames, registers: [this.registry] })
              : new Histogram({ name: delta.name, help: `Reported by consumers: ${delta.name}`, labelNames, registers: [this.registry] });
          this.#consumerMetrics.set(delta.name, metric);
        }
        if (delta.kind === 'counter') {
          if (!(metric instanceof Counter)) throw new Error(`${delta.name} is a histogram, not a counter`);
          metric.inc(labels, delta.values[0] ?? 0);
        } else {
          if (!(metric instanceof Histogram)) throw new Error(`${delta.name} is a counter, not a histogram`);
          for (const v of delta.values) metric.observe(labels, v);
        }
      } catch (err) {
        this.#invalidMetrics.add(id);
        warn(`consumer metric ${delta.name} ignored: ${(err as Error).message}`);
      }
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
