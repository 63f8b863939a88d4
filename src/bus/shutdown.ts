/**
 * Graceful shutdown for a service: on SIGTERM or SIGINT, close the bus (stop
 * intake, drain every accepted event, write the cursors), then exit. A
 * second signal while draining exits at once: with a durable store nothing
 * acknowledged is lost then either, it is delivered again after the restart.
 */
import type { EventBus } from './bus.js';

export interface ShutdownOptions {
  /** Default: SIGTERM and SIGINT. */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * Exit the process once closed (default true), with `exitCode` (default 0);
   * a failed close exits with 1. A second signal while draining exits
   * whatever `exit` says, with `exitCode` when it is not 0, else 1.
   */
  readonly exit?: boolean;
  readonly exitCode?: number;
  /**
   * Passed to `bus.close({ timeoutMs })`: how long to drain before giving up
   * on the events not yet handled (they are delivered again after the
   * restart). Default: no limit.
   */
  readonly timeoutMs?: number;
  /** Called with what happens; default: nothing. */
  readonly log?: (message: string) => void;
}

/**
 * Installs the handlers; returns a function that removes them. Takes any bus
 * by the members it uses, so a catalogue-typed bus (TypedEventBus) fits too.
 */
export function closeOnSignals(bus: Pick<EventBus, 'close' | 'pending'>, options: ShutdownOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const log = options.log ?? (() => undefined);
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log(`eventrail: second ${signal} while draining, exiting now`);
      process.exit(options.exitCode === undefined ? 1 : options.exitCode || 1);
    }
    closing = true;
    log(`eventrail: ${signal} received, draining ${bus.pending} pending events`);
    bus.close(options.timeoutMs === undefined ? undefined : { timeoutMs: options.timeoutMs }).then(
      () => {
        log('eventrail: closed');
        if (options.exit !== false) process.exit(options.exitCode ?? 0);
      },
      (err: unknown) => {
        log(`eventrail: close failed: ${(err as Error)?.message ?? String(err)}`);
        if (options.exit !== false) process.exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
