/**
 * The bus's own notices ('worker-error', 'warning'), apart from the events it
 * carries. Made before any other part of the engine, so that every part that
 * warns is handed it when it is built; `EventBus.on()` listens to it.
 */
import { EventEmitter } from 'node:events';
import type { WorkerCrashedError } from '../errors.js';

export interface BusEvents {
  /** A batch was lost to a worker that crashed or exited; it is being run again. */
  'worker-error': [error: WorkerCrashedError];
  /** Something went wrong that the bus worked around (a failed cursor write, a lost lease, a bad consumer metric). */
  warning: [message: string, cause?: unknown];
}

export type BusListener<K extends keyof BusEvents> = (...args: BusEvents[K]) => void;

export class Notices {
  readonly #emitter = new EventEmitter<BusEvents>();

  on<K extends keyof BusEvents>(name: K, listener: BusListener<K>): void {
    this.#emitter.on(name, listener as never);
  }

  off<K extends keyof BusEvents>(name: K, listener: BusListener<K>): void {
    this.#emitter.off(name, listener as never);
  }

  /** Notices raised before anyone listens (while the engine starts) go nowhere. */
  readonly warn = (message: string, cause?: unknown): void => {
    this.#emitter.emit('warning', message, cause);
  };

  readonly workerError = (error: WorkerCrashedError): void => {
    this.#emitter.emit('worker-error', error);
  };
}
