/**
 * `node:diagnostics_channel` channels of the bus, on the main thread. A
 * message is built and published only when the channel has subscribers
 * (`hasSubscribers`), so they cost nothing when nobody listens. Names and
 * message shapes are part of the public contract (README, "Diagnostics
 * channels").
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { SerializedError } from '../errors.js';
import type { Event } from '../event/event.js';

/** `eventrail:emit`: an event was accepted (validated, encoded, admitted by backpressure) and joins a commit batch (follow-ups too). */
export interface EmitMessage {
  /** The complete event (generated fields filled in); do not modify it. */
  readonly event: Event;
}

/** `eventrail:commit`: a batch of events is durable (or committed in memory with store 'none'). */
export interface CommitMessage {
  /** Events in the batch, duplicates included. */
  readonly count: number;
  /** Of those, events whose event_id was already stored (not delivered again). */
  readonly duplicates: number;
  /** ms from the batch's first accepted event to its commit. */
  readonly durationMs: number;
}

/** `eventrail:deliver`: every consumer of an event has finished with it (handled, or dead-lettered). */
export interface DeliverMessage {
  readonly eventId: string;
  /** 24 hex digits, as in the receipt. */
  readonly position: string | null;
}

/** `eventrail:dead-letter`: a delivery ran out of attempts and its dead letter is being saved. */
export interface DeadLetterMessage {
  readonly eventId: string;
  readonly consumer: string;
  readonly position: string | null;
  readonly attempts: number;
  readonly error: SerializedError;
}

export const CHANNEL_NAMES = {
  emit: 'eventrail:emit',
  commit: 'eventrail:commit',
  deliver: 'eventrail:deliver',
  deadLetter: 'eventrail:dead-letter',
} as const;

export const emitChannel = diagnostics_channel.channel(CHANNEL_NAMES.emit);
export const commitChannel = diagnostics_channel.channel(CHANNEL_NAMES.commit);
export const deliverChannel = diagnostics_channel.channel(CHANNEL_NAMES.deliver);
export const deadLetterChannel = diagnostics_channel.channel(CHANNEL_NAMES.deadLetter);
