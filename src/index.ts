/**
 * eventrail: an embedded event bus. Every export is listed by name.
 */
export { createBus, EventBus } from './bus/bus.js';
export { closeOnSignals } from './bus/shutdown.js';
export type { ShutdownOptions } from './bus/shutdown.js';
export type { Audit, AuditQuery, BusEvents, DeadLetters, Producer, ProducerInput, ReplayQuery, TimeBound } from './bus/bus.js';
export type { Receipt } from './bus/intake.js';
export type { DeadLetter, DeadLetterFilter } from './bus/dead-letters.js';
export { defineConsumer, isConsumer } from './consumer.js';
export type { Consumer, ConsumerContext, ConsumerDefinition, ConsumerMetrics, EventTypeFilter, FollowUpInput } from './consumer.js';
export { BUILTIN_EVENT_TYPES, eventTypeName } from './event/event.js';
export type {
  AuditEntry,
  BuiltinEventType,
  CustomEventType,
  Event,
  EventInput,
  EventMetadata,
  EventType,
  JsonValue,
} from './event/event.js';
export { eventSchema, eventTypeSchema } from './event/schema.js';
export { toSerdeJson } from './event/serde-json.js';
export { resolveOptions, envNameOf, DEFAULT_AUDIT_TYPES } from './options.js';
export type { BusOptions, ResolvedOptions, StoreOptions } from './options.js';
export type { ConsumerDescriptor } from './protocol.js';
export {
  BackpressureError,
  BusClosedError,
  ConfigFileError,
  ConsumerLoadError,
  CorruptBatchError,
  ErrorCodes,
  EventTooLargeError,
  EventrailError,
  FdbClientMissingError,
  HandlerFailedError,
  HandlerTimeoutError,
  InexactNumberError,
  InvalidConsumerError,
  InvalidEventError,
  InvalidOptionsError,
  StoreCorruptError,
  StoreReadError,
  StoreUnavailableError,
  StoreWriteError,
  WorkerCrashedError,
} from './errors.js';
export type { ErrorCode, FdbMissingPart, SerializedError, ValidationIssue } from './errors.js';
