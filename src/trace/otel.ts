/**
 * Trace context from emit to handler, with `@opentelemetry/api` when it is
 * installed (an optional peer dependency). It is loaded with `await import()`
 * once per bus and once per worker, and only when tracing is on: without it,
 * nothing here runs and nothing is stored.
 *
 * - Main thread (`TraceCapture`): `emit` reads the active span context and,
 *   when it is valid, stores its W3C traceparent (and tracestate) beside the
 *   event (envelope.ts), never in the event's serde-shaped fields. The W3C
 *   form is written from the span context directly, whatever propagators
 *   the application registered.
 * - Worker (`DeliveryTracer`): each handler call runs inside a span of kind
 *   CONSUMER, named `process <event type>`, linked (not parented) to the
 *   emit's span context: a batch mixes events of many traces, and a
 *   delivery may be a retry hours later. The worker's tracer provider is
 *   the one the `tracing.setup` module registers in each worker.
 */
import type { Event } from '../event/event.js';
import type { Envelope } from '../event/envelope.js';
import { eventTypeName } from '../event/event.js';

type OtelApi = typeof import('@opentelemetry/api');
type Span = import('@opentelemetry/api').Span;

/**
 * `@opentelemetry/api` as loaded, opaque outside this file: eventrail's
 * declaration files never name the optional package.
 */
export interface OtelModule {
  readonly trace: unknown;
}

/** `@opentelemetry/api`, or null when it is not installed. */
export async function loadOtel(): Promise<OtelModule | null> {
  try {
    return await import('@opentelemetry/api');
  } catch {
    return null;
  }
}

/** The trace context of the current emit, as stored beside the event. */
export interface CapturedContext {
  /** W3C traceparent. */
  readonly tp: string;
  /** W3C tracestate, when there is one. */
  readonly ts?: string;
}

export class TraceCapture {
  readonly #api: OtelApi;

  constructor(api: OtelModule) {
    this.#api = api as OtelApi;
  }

  /** The active span context as W3C traceparent/tracestate, or null when there is none (the common, cheap case). */
  capture(): CapturedContext | null {
    const api = this.#api;
    const sc = api.trace.getSpanContext(api.context.active());
    if (sc === undefined || !api.isSpanContextValid(sc)) return null;
    const tp = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    const ts = sc.traceState?.serialize();
    return ts ? { tp, ts } : { tp };
  }
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export class DeliveryTracer {
  readonly #api: OtelApi;
  readonly #tracer: import('@opentelemetry/api').Tracer;
  readonly #capture: TraceCapture;

  constructor(api: OtelModule) {
    this.#api = api as OtelApi;
    this.#tracer = this.#api.trace.getTracer('eventrail');
    this.#capture = new TraceCapture(api);
  }

  /** The active context (in a handler: its span) as stored beside a follow-up event. */
  capture(): CapturedContext | null {
    return this.#capture.capture();
  }

  /**
   * Runs `call` (a handler) inside a CONSUMER span linked to the context
   * stored with the event, and ends the span when the handler returns, when
   * its promise settles, or when `signal` aborts (the handler timed out: its
   * promise may never settle).
   */
  run<R>(event: Event, envelope: Envelope | undefined, consumer: string, attempt: number, signal: AbortSignal, call: () => R): R {
    const api = this.#api;
    const type = eventTypeName(event.event_type);
    const link = envelope?.tp === undefined ? undefined : this.#linkOf(envelope.tp, envelope.ts);
    const span = this.#tracer.startSpan(`process ${type}`, {
      kind: api.SpanKind.CONSUMER,
      links: link === undefined ? [] : [{ context: link }],
      attributes: {
        'messaging.system': 'eventrail',
        'messaging.operation.name': 'process',
        'messaging.operation.type': 'process',
        'messaging.destination.name': type,
        'messaging.message.id': event.event_id,
        'messaging.consumer.group.name': consumer,
        'eventrail.attempt': attempt,
      },
    });
    let result: R;
    try {
      result = api.context.with(api.trace.setSpan(api.context.active(), span), call);
    } catch (err) {
      this.#fail(span, err);
      span.end();
      throw err;
    }
    const pending = result as unknown as PromiseLike<unknown> | null;
    if (pending !== null && typeof pending === 'object' && typeof pending.then === 'function') {
      let ended = false;
      const end = (err?: unknown) => {
        if (ended) return;
        ended = true;
        signal.removeEventListener('abort', onAbort);
        if (err !== undefined) this.#fail(span, err);
        span.end();
      };
      const onAbort = () => end(signal.reason ?? new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        () => end(),
        (err: unknown) => end(err ?? new Error('rejected')),
      );
    } else {
      span.end();
    }
    return result;
  }

  #fail(span: Span, err: unknown): void {
    if (err instanceof Error) span.recordException(err);
    span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }

  #linkOf(traceparent: string, tracestate: string | undefined): import('@opentelemetry/api').SpanContext | undefined {
    const m = TRACEPARENT.exec(traceparent);
    if (m === null) return undefined;
    const api = this.#api;
    const context = {
      traceId: m[2]!,
      spanId: m[3]!,
      traceFlags: Number.parseInt(m[4]!, 16),
      isRemote: true,
      traceState: tracestate === undefined ? undefined : api.createTraceState(tracestate),
    };
    return api.isSpanContextValid(context) ? context : undefined;
  }
}
