/**
 * The one error catalogue. Every failure eventrail reports is an
 * `EventrailError` with a stable string `code`; codes are never reused.
 * Errors cross the thread boundary as plain {@link SerializedError} objects.
 */

export const ErrorCodes = {
  INVALID_EVENT: 'ERR_EVENTRAIL_INVALID_EVENT',
  EVENT_TOO_LARGE: 'ERR_EVENTRAIL_EVENT_TOO_LARGE',
  INVALID_OPTIONS: 'ERR_EVENTRAIL_INVALID_OPTIONS',
  CONFIG_FILE: 'ERR_EVENTRAIL_CONFIG_FILE',
  BACKPRESSURE: 'ERR_EVENTRAIL_BACKPRESSURE',
  CLOSED: 'ERR_EVENTRAIL_CLOSED',
  CONSUMER_LOAD: 'ERR_EVENTRAIL_CONSUMER_LOAD',
  INVALID_CONSUMER: 'ERR_EVENTRAIL_INVALID_CONSUMER',
  /**
   * No class: the code a serialized error gets in a dead letter when the
   * handler threw something without a code of its own (see serializeError).
   */
  HANDLER_FAILED: 'ERR_EVENTRAIL_HANDLER_FAILED',
  HANDLER_TIMEOUT: 'ERR_EVENTRAIL_HANDLER_TIMEOUT',
  WORKER_CRASHED: 'ERR_EVENTRAIL_WORKER_CRASHED',
  CORRUPT_BATCH: 'ERR_EVENTRAIL_CORRUPT_BATCH',
  STORE_WRITE: 'ERR_EVENTRAIL_STORE_WRITE',
  STORE_READ: 'ERR_EVENTRAIL_STORE_READ',
  STORE_CORRUPT: 'ERR_EVENTRAIL_STORE_CORRUPT',
  STORE_UNAVAILABLE: 'ERR_EVENTRAIL_STORE_UNAVAILABLE',
  FDB_CLIENT_MISSING: 'ERR_EVENTRAIL_FDB_CLIENT_MISSING',
  /** A payload that its type's schema in the bus's event catalogue rejects (src/event/catalog.ts). */
  PAYLOAD_SCHEMA: 'ERR_EVENTRAIL_PAYLOAD_SCHEMA',
  /** A catalogue's upcast step threw, or gave a payload the current schema rejects. */
  UPCAST: 'ERR_EVENTRAIL_UPCAST',
  INEXACT_NUMBER: 'ERR_EVENTRAIL_INEXACT_NUMBER',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The shape in which an error crosses a thread boundary or is stored. */
export interface SerializedError {
  code: string;
  name: string;
  message: string;
  stack?: string | undefined;
}

/**
 * The brand on every eventrail error. `Symbol.for` gives the same symbol in
 * every copy of this package loaded in a process (two installs at different
 * versions, a bundled copy), where `instanceof` sees different classes.
 */
const ERROR_BRAND = Symbol.for('eventrail.error');

export class EventrailError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  static {
    // On the prototype: every instance carries it, and it is not an own property that equality checks compare.
    Object.defineProperty(this.prototype, ERROR_BRAND, { value: true });
  }

  override get name(): string {
    return this.constructor.name;
  }

  toJSON(): SerializedError {
    return { code: this.code, name: this.name, message: this.message, stack: this.stack };
  }
}

/** One issue found by validation: where, what was received, what was expected. */
export interface ValidationIssue {
  path: string;
  message: string;
}

export class InvalidEventError extends EventrailError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[]) {
    super(ErrorCodes.INVALID_EVENT, `invalid event: ${issues.map((i) => i.message).join('; ')}`);
    this.issues = issues;
  }
}

/**
 * JSON text held an integer that cannot be kept exactly (beyond i64/u64, where
 * a double would round it): rejected rather than stored as another number.
 */
export class InexactNumberError extends EventrailError {
  constructor(message: string) {
    super(ErrorCodes.INEXACT_NUMBER, message);
  }
}

export class EventTooLargeError extends EventrailError {
  constructor(message: string) {
    super(ErrorCodes.EVENT_TOO_LARGE, message);
  }
}

export class InvalidOptionsError extends EventrailError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], source?: string) {
    const where = source ? ` (from ${source})` : '';
    super(ErrorCodes.INVALID_OPTIONS, `invalid eventrail options${where}: ${issues.map((i) => i.message).join('; ')}`);
    this.issues = issues;
  }
}

export class ConfigFileError extends EventrailError {
  readonly path: string;
  constructor(path: string, message: string, cause?: unknown) {
    super(ErrorCodes.CONFIG_FILE, `config file ${path}: ${message}`, { cause });
    this.path = path;
  }
}

export class BackpressureError extends EventrailError {
  constructor(maxPending: number) {
    super(
      ErrorCodes.BACKPRESSURE,
      `backpressure: ${maxPending} events are pending (backpressure.maxPending) and backpressure.onOverflow is 'reject'`,
    );
  }
}

export class BusClosedError extends EventrailError {
  constructor(operation: string) {
    super(ErrorCodes.CLOSED, `cannot ${operation}: the bus is closed`);
  }
}

export class ConsumerLoadError extends EventrailError {
  readonly specifier: string;
  constructor(specifier: string, message: string, cause?: unknown) {
    super(ErrorCodes.CONSUMER_LOAD, `consumer module ${specifier}: ${message}`, { cause });
    this.specifier = specifier;
  }
}

export class InvalidConsumerError extends EventrailError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_CONSUMER, message);
  }
}

export class HandlerTimeoutError extends EventrailError {
  constructor(consumer: string, timeoutMs: number) {
    super(ErrorCodes.HANDLER_TIMEOUT, `consumer ${consumer} did not settle within ${timeoutMs} ms (delivery.handlerTimeoutMs)`);
  }
}

export class WorkerCrashedError extends EventrailError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.WORKER_CRASHED, `worker failed while running a batch: ${message}`, { cause });
  }
}

export class CorruptBatchError extends EventrailError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.CORRUPT_BATCH, `corrupt batch: ${message}`, { cause });
  }
}

export class StoreWriteError extends EventrailError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.STORE_WRITE, `store write failed: ${message}`, { cause });
  }
}

export class StoreReadError extends EventrailError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.STORE_READ, `store read failed: ${message}`, { cause });
  }
}

export class StoreCorruptError extends EventrailError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.STORE_CORRUPT, `corrupt store data: ${message}`, { cause });
  }
}

export class StoreUnavailableError extends EventrailError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.STORE_UNAVAILABLE, message, { cause });
  }
}

/**
 * What `store.kind: 'fdb'` found missing: the FoundationDB client library
 * (libfdb_c), the npm package `foundationdb`, or that package's native module
 * for this platform.
 */
export type FdbMissingPart = 'library' | 'package' | 'native-build';

const FDB_CLIENT_DOWNLOAD = 'foundationdb-clients from https://github.com/apple/foundationdb/releases';

const FDB_MISSING_MESSAGES: Record<FdbMissingPart, string> = {
  library:
    'store.kind "fdb" needs the FoundationDB client library (libfdb_c), which could not be loaded. ' +
    `Install the FoundationDB client package for your platform (${FDB_CLIENT_DOWNLOAD}), make sure \`npm ls foundationdb\` shows the ` +
    'package, then retry; or use store.kind "lmdb".',
  package:
    'store.kind "fdb" needs the npm package `foundationdb`, which is not installed (it is an optional dependency: ' +
    'npm leaves it out when its install script fails). Run `npm install foundationdb`, and install the FoundationDB ' +
    `client library it binds, libfdb_c (${FDB_CLIENT_DOWNLOAD}); or use store.kind "lmdb".`,
  'native-build':
    'store.kind "fdb" needs the native module of the npm package `foundationdb`, and none is built for this platform ' +
    '(its prebuilds cover linux-x64, darwin-x64 and darwin-arm64). Install the FoundationDB client library, libfdb_c ' +
    `(${FDB_CLIENT_DOWNLOAD}), then build the module with \`npm rebuild foundationdb\` (with install scripts allowed ` +
    'for it and a C++ toolchain); or use store.kind "lmdb".',
};

export class FdbClientMissingError extends EventrailError {
  readonly missing: FdbMissingPart;

  constructor(cause?: unknown, missing: FdbMissingPart = 'library') {
    super(ErrorCodes.FDB_CLIENT_MISSING, FDB_MISSING_MESSAGES[missing], { cause });
    this.missing = missing;
  }
}

/** The error class of each code; a code without a class of its own is a plain EventrailError. */
export interface ErrorsByCode {
  ERR_EVENTRAIL_INVALID_EVENT: InvalidEventError;
  ERR_EVENTRAIL_EVENT_TOO_LARGE: EventTooLargeError;
  ERR_EVENTRAIL_INVALID_OPTIONS: InvalidOptionsError;
  ERR_EVENTRAIL_CONFIG_FILE: ConfigFileError;
  ERR_EVENTRAIL_BACKPRESSURE: BackpressureError;
  ERR_EVENTRAIL_CLOSED: BusClosedError;
  ERR_EVENTRAIL_CONSUMER_LOAD: ConsumerLoadError;
  ERR_EVENTRAIL_INVALID_CONSUMER: InvalidConsumerError;
  ERR_EVENTRAIL_HANDLER_FAILED: EventrailError;
  ERR_EVENTRAIL_HANDLER_TIMEOUT: HandlerTimeoutError;
  ERR_EVENTRAIL_WORKER_CRASHED: WorkerCrashedError;
  ERR_EVENTRAIL_CORRUPT_BATCH: CorruptBatchError;
  ERR_EVENTRAIL_STORE_WRITE: StoreWriteError;
  ERR_EVENTRAIL_STORE_READ: StoreReadError;
  ERR_EVENTRAIL_STORE_CORRUPT: StoreCorruptError;
  ERR_EVENTRAIL_STORE_UNAVAILABLE: StoreUnavailableError;
  ERR_EVENTRAIL_FDB_CLIENT_MISSING: FdbClientMissingError;
  ERR_EVENTRAIL_PAYLOAD_SCHEMA: PayloadSchemaError;
  ERR_EVENTRAIL_UPCAST: UpcastError;
  ERR_EVENTRAIL_INEXACT_NUMBER: InexactNumberError;
}

/**
 * True for an eventrail error (with this code, if one is given) from any copy
 * of this package: it checks the `Symbol.for('eventrail.error')` brand, not the
 * class, so it holds where `instanceof EventrailError` does not (an error made
 * by another install of eventrail in the same process).
 */
export function isEventrailError(value: unknown): value is EventrailError;
export function isEventrailError<C extends ErrorCode>(value: unknown, code: C): value is ErrorsByCode[C];
export function isEventrailError(value: unknown, code?: ErrorCode): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  if ((value as { [ERROR_BRAND]?: unknown })[ERROR_BRAND] !== true) return false;
  return code === undefined || (value as { code?: unknown }).code === code;
}

/** Turns anything thrown into the plain shape that crosses threads. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof EventrailError) return err.toJSON();
  if (err instanceof Error) {
    const own = (err as { code?: unknown }).code;
    const code = typeof own === 'string' ? own : ErrorCodes.HANDLER_FAILED;
    return { code, name: err.name, message: err.message, stack: err.stack };
  }
  let message: string;
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    message = String(err);
  }
  return { code: ErrorCodes.HANDLER_FAILED, name: 'Error', message: `non-error thrown: ${message}` };
}

/**
 * An event whose payload does not match its type's schema in the bus's event
 * catalogue. `issues` name each payload field path (`payload.items[0].qty`)
 * and what was expected.
 */
export class PayloadSchemaError extends EventrailError {
  readonly eventType: string;
  readonly issues: readonly ValidationIssue[];
  constructor(eventType: string, issues: readonly ValidationIssue[]) {
    super(ErrorCodes.PAYLOAD_SCHEMA, `invalid ${eventType} payload: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`);
    this.eventType = eventType;
    this.issues = issues;
  }
}

/** Upcasting a stored event of an older version to its type's current version failed. */
export class UpcastError extends EventrailError {
  constructor(eventType: string, from: number, to: number, message: string, cause?: unknown) {
    super(ErrorCodes.UPCAST, `cannot upcast ${eventType} from version ${from} to ${to}: ${message}`, { cause });
  }
}
