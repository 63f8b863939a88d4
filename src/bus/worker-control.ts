/**
 * The bus's side of the control channel to its workers (see ControlMessage in
 * protocol.ts). Before the pool is destroyed, the workers are asked to abort
 * the signal of every handler still running, so that a handler learns it was
 * given up on instead of vanishing mid-await with its worker.
 */
import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import type { ControlMessage } from '../protocol.js';

/** How long the bus waits for workers to answer an abort: a worker blocked in synchronous code never does. */
const ANSWER_MS = 1000;

export class WorkerControl {
  /** The channel's name, handed to the workers in WorkerInit. */
  readonly name = `eventrail:${process.pid}:${randomUUID()}`;
  #channel: BroadcastChannel | null = null;

  /** Opens the channel: call before the first worker starts, so that none misses a message. */
  open(): void {
    this.#channel ??= new BroadcastChannel(this.name);
    this.#channel.unref();
  }

  /**
   * Asks every worker to abort the signals of the handlers it still runs and
   * resolves once each of `threadIds` answered (after its handlers' abort
   * listeners and one turn of its event loop ran), or after ANSWER_MS.
   */
  abortHandlers(threadIds: readonly number[]): Promise<void> {
    const channel = this.#channel;
    if (channel === null || threadIds.length === 0) return Promise.resolve();
    const waiting = new Set(threadIds);
    return new Promise<void>((resolve) => {
      const onMessage = (message: unknown) => {
        const data = (message as { data?: ControlMessage }).data;
        if (data?.kind !== 'aborted') return;
        waiting.delete(data.threadId);
        if (waiting.size === 0) finish();
      };
      const finish = () => {
        clearTimeout(timer);
        channel.removeEventListener('message', onMessage);
        resolve();
      };
      const timer = setTimeout(finish, ANSWER_MS);
      channel.addEventListener('message', onMessage);
      channel.postMessage({ kind: 'abort' } satisfies ControlMessage);
    });
  }

  close(): void {
    this.#channel?.close();
    this.#channel = null;
  }
}
