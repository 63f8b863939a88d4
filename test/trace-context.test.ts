/**
 * Trace context from emit to handler, with the real OpenTelemetry SDK
 * (in-memory exporters, no mocks) in the main thread and in the worker: emit
 * stores the active span context beside the event, and the handler runs in a
 * worker span of kind CONSUMER linked to it; the event's JSON stays serde's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { context, createTraceState, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Event, EventInput, JsonValue } from '../src/index.js';
import { envelopeOf } from '../src/event/envelope.js';
import type { ActiveSpanLine, FinishedSpan, SpansLine } from './fixtures/trace-consumer.js';
import { fixture, linesOf, withBus } from './helpers.js';

// The application's own tracing on the main thread.
const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
const tracer = trace.getTracer('checkout-service');

const SERDE_KEYS = ['event_id', 'timestamp', 'event_type', 'payload', 'metadata'];
const metadata = { source: 'checkout' };
const order = (payload: Record<string, JsonValue> = {}): EventInput => ({ event_type: { Custom: 'OrderPlaced' }, payload, metadata });

describe('trace context', () => {
  it('emit stores the active span context; the worker runs the handler in a CONSUMER span linked to it', async () => {
    await withBus(
      (dir) => ({
        store: { kind: 'lmdb', path: dir.file('store') },
        consumers: [fixture('trace-consumer')],
        tracing: { setup: fixture('trace-setup') },
        pool: { minThreads: 1, maxThreads: 1 },
        delivery: { maxAttempts: 1, handlerTimeoutMs: 1000 },
      }),
      async ({ bus, out }) => {
        const traced = await tracer.startActiveSpan('checkout', async (span) => {
          try {
            return await bus.emit(order({ n: 1 }));
          } finally {
            span.end();
          }
        });
        const checkout = exporter
          .getFinishedSpans()
          .find((s) => s.name === 'checkout')!
          .spanContext();
        // A remote context with a tracestate, as an incoming request would bring.
        const remote = {
          traceId: '0af7651916cd43dd8448eb211c80319c',
          spanId: 'b7ad6b7169203331',
          traceFlags: TraceFlags.SAMPLED,
          traceState: createTraceState('vendor=abc,other=1'),
        };
        const withState = await context.with(trace.setSpanContext(context.active(), remote), () => bus.emit(order({ n: 2 })));
        const untraced = await bus.emit(order({ n: 3 }));
        const failing = await tracer.startActiveSpan('checkout-failing', async (span) => {
          try {
            return await bus.emit(order({ fail: true }));
          } finally {
            span.end();
          }
        });
        const parent = await bus.emit(order({ followUp: true }));
        const hung = await bus.emit(order({ hang: true }));
        await bus.flush();
        await bus.emit({ event_type: { Custom: 'DumpSpans' }, payload: {}, metadata });
        await bus.flush();

        const spans = linesOf<SpansLine>(out.path, 'Traced').find((l) => l.kind === 'spans')!.spans;
        const spanOf = (eventId: string): FinishedSpan => {
          const found = spans.filter((s) => s.attributes['messaging.message.id'] === eventId);
          assert.equal(found.length, 1, `one worker span for ${eventId}`);
          return found[0]!;
        };

        const s1 = spanOf(traced.event_id);
        assert.equal(s1.name, 'process OrderPlaced');
        assert.equal(s1.kind, SpanKind.CONSUMER);
        assert.deepEqual(s1.links, [{ traceId: checkout.traceId, spanId: checkout.spanId, traceState: null }]);
        assert.equal(s1.parentSpanId, null, 'linked, not parented');
        assert.equal(s1.status, SpanStatusCode.UNSET);
        assert.deepEqual(
          [
            s1.attributes['messaging.system'],
            s1.attributes['messaging.operation.name'],
            s1.attributes['messaging.consumer.group.name'],
            s1.attributes['eventrail.attempt'],
          ],
          ['eventrail', 'process', 'Traced', 1],
        );

        assert.deepEqual(spanOf(withState.event_id).links, [
          { traceId: remote.traceId, spanId: remote.spanId, traceState: 'vendor=abc,other=1' },
        ]);
        assert.deepEqual(spanOf(untraced.event_id).links, [], 'no context at emit: a span without a link');
        assert.equal(spanOf(failing.event_id).status, SpanStatusCode.ERROR);
        // A handler that timed out: its span is ended (with an error) although its promise never settles.
        assert.equal(spanOf(hung.event_id).status, SpanStatusCode.ERROR);

        // A follow-up carries the context of the handler that emitted it (the worker's span), not the main thread's.
        const handlerSpan = spanOf(parent.event_id);
        const shipped = spans.filter((s) => s.name === 'process OrderShipped');
        assert.equal(shipped.length, 1);
        assert.deepEqual(shipped[0]!.links, [{ traceId: handlerSpan.traceId, spanId: handlerSpan.spanId, traceState: null }]);

        // The handler ran inside its span, before and after an await.
        const active = new Map(
          linesOf<ActiveSpanLine>(out.path, 'Traced')
            .filter((l) => l.kind === 'active')
            .map((l) => [l.event_id, l]),
        );
        const a1 = active.get(traced.event_id)!;
        assert.equal(a1.before, `${s1.traceId}/${s1.spanId}`);
        assert.equal(a1.after, a1.before);

        // Stored beside the event: W3C traceparent (and tracestate); the event's own fields stay serde's.
        const stored = new Map<string, Event>();
        for await (const e of bus.replay()) stored.set(e.event_id, e);
        assert.deepEqual(envelopeOf(stored.get(traced.event_id)!), { tp: `00-${checkout.traceId}-${checkout.spanId}-01` });
        assert.deepEqual(envelopeOf(stored.get(withState.event_id)!), {
          tp: `00-${remote.traceId}-${remote.spanId}-01`,
          ts: 'vendor=abc,other=1',
        });
        assert.equal(envelopeOf(stored.get(untraced.event_id)!), undefined, 'nothing stored when there is no context');
        for (const e of stored.values()) assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(e)) as object), SERDE_KEYS);
        assert.deepEqual(stored.get(traced.event_id)!.payload, { n: 1 });
      },
    );
  });

  it('tracing.enabled false: nothing is captured at emit and no spans are made in the worker', async () => {
    await withBus(
      (dir) => ({
        store: { kind: 'lmdb', path: dir.file('store') },
        consumers: [fixture('trace-consumer')],
        tracing: { enabled: false, setup: fixture('trace-setup') },
        pool: { minThreads: 1, maxThreads: 1 },
      }),
      async ({ bus, out }) => {
        const receipt = await tracer.startActiveSpan('checkout', async (span) => {
          try {
            return await bus.emit(order({ n: 1 }));
          } finally {
            span.end();
          }
        });
        await bus.flush();
        for await (const e of bus.replay()) assert.equal(envelopeOf(e), undefined);
        const line = linesOf<ActiveSpanLine>(out.path, 'Traced').find((l) => l.event_id === receipt.event_id)!;
        // The consumer module registers the SDK itself (it imports the setup module), yet no span was started for it.
        assert.equal(line.before, null);
      },
    );
  });
});
