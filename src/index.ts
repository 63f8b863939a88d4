/**
 * eventrail: an embedded event bus. Every export is listed by name.
 */
export { createBus, EventBus } from './bus/bus.js';
export { closeOnSignals } from './bus/shutdown.js';
export type { ShutdownOptions } from './bus/shutdown.js';
export type { Audit, AuditQuery, CloseOptions, DeadLetters, Producer, ProducerInput, ReplayQuery, TimeBound } from './bus/bus.js';
export type { BusEvents } from './bus/notices.js';
export type { Receipt } from './bus/intake.js';
export type { DeadLetter, DeadLetterFilter } from './bus/dead-letters.js';
export { defineConsumer, isConsumer } from './consumer.js';
export type {
  Consumer,
  ConsumerContext,
  ConsumerDefinition,
  ConsumerMetrics,
  ConsumerOptions,
  EventTypeFilter,
  FollowUpInput,
} from './consumer.js';
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
export type { BusOptions, ConsumerEntry, ResolvedOptions, StoreOptions } from './options.js';
export type {
  AuditOptions,
  BackpressureOptions,
  CheckpointOptions,
  CoordinationOptions,
  DeliveryOptions,
  DispatchOptions,
  FdbStoreOptions,
  LimitsOptions,
  LmdbStoreOptions,
  NoStoreOptions,
  PoolOptions,
  TracingOptions,
} from './bus-options.js';
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
  HandlerTimeoutError,
  InexactNumberError,
  InvalidConsumerError,
  InvalidEventError,
  InvalidOptionsError,
  PayloadSchemaError,
  StoreCorruptError,
  StoreReadError,
  StoreUnavailableError,
  StoreWriteError,
  UpcastError,
  WorkerCrashedError,
  isEventrailError,
} from './errors.js';
export type { ErrorCode, ErrorsByCode, FdbMissingPart, SerializedError, ValidationIssue } from './errors.js';
// Typed event catalogues and trace context.
export { defineEvents, EventCatalog, isEventCatalog } from './event/catalog.js';
export type {
  CatalogConsumerDefinition,
  CatalogEvent,
  CatalogEventInput,
  CatalogEventType,
  CatalogPayload,
  CatalogPayloadInput,
  EventDefinition,
  EventDefinitions,
  TypedEventBus,
  VersionedEvent,
} from './event/catalog.js';
export { CHANNEL_NAMES } from './trace/channels.js';
export type { CommitMessage, DeadLetterMessage, DeliverMessage, EmitMessage } from './trace/channels.js';
