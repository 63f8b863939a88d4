/**
 * Options resolve in one pass: one zod schema gives the defaults, checks every
 * field and the combinations, and returns a frozen, fully typed result. Sources,
 * lowest precedence first: defaults, the options object or JSON config file
 * given to `createBus`, then `EVENTRAIL_*` environment variables (so that an
 * operator can tune a deployed service without touching its code).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import { ConfigFileError, InvalidOptionsError } from './errors.js';
import { DEFAULT_MAX_TRANSACTION_BYTES } from './store/limits.js';
import { eventTypeSchema, describe, toIssues } from './event/schema.js';
import type { BusOptions, ConsumerEntry } from './bus-options.js';
import type { EventType } from './event/event.js';
import { isEventCatalog, type AnyEventCatalog } from './event/catalog.js';

const int = (what: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number({ error: (iss) => `must be ${what}, got ${describe(iss.input)}` })
    .int({ error: (iss) => `must be ${what}, got ${describe(iss.input)}` })
    .min(min, { error: (iss) => `must be ${what}, got ${describe(iss.input)}` })
    .max(max, { error: (iss) => `must be ${what}, got ${describe(iss.input)}` });

const positiveInt = (max?: number) => int(max === undefined ? 'a positive integer' : `an integer from 1 to ${max}`, 1, max);
const nonNegativeInt = (max?: number) => int(max === undefined ? 'an integer ≥ 0' : `an integer from 0 to ${max}`, 0, max);
const nonEmptyString = (what: string) =>
  z.string({ error: (iss) => `must be ${what}, got ${describe(iss.input)}` }).min(1, { error: `must be ${what}, got \`""\`` });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => `must be one of ${values.map((v) => `'${v}'`).join(', ')}, got ${describe(iss.input)}` });
const section = <T extends z.ZodRawShape>(shape: T) =>
  z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? undefined : `must be an object, got ${describe(iss.input)}`),
  });

export const DEFAULT_AUDIT_TYPES: readonly EventType[] = ['UserLoggedIn', 'UserLoggedOut', 'SessionInvalidated'];
export const DEFAULT_LMDB_PATH = './eventrail-data';

const storeSchema = z.discriminatedUnion(
  'kind',
  [
    section({
      kind: z.literal('lmdb'),
      path: nonEmptyString('a folder path').default(DEFAULT_LMDB_PATH),
      prefix: nonEmptyString('a non-empty string').default('eventrail'),
      /** lmdb's map size in bytes: the most the store can grow to before writes fail with a full map. */
      mapSize: positiveInt().optional(),
    }),
    section({
      kind: z.literal('fdb'),
      clusterFile: nonEmptyString('a path to a FoundationDB cluster file').optional(),
      prefix: nonEmptyString('a non-empty string').default('eventrail'),
      apiVersion: int('a FoundationDB API version from 620 to 720 (what the foundationdb package supports)', 620, 720).default(720),
      maxTransactionBytes: int('a byte count from 1024 to 9000000', 1024, 9_000_000).default(DEFAULT_MAX_TRANSACTION_BYTES),
    }),
    section({ kind: z.literal('none') }),
  ],
  {
    error: (iss) => {
      // An object with an unknown kind: name the kind, not "an object".
      const input = iss.input;
      return input !== null && typeof input === 'object' && !Array.isArray(input)
        ? `must be one of 'lmdb', 'fdb', 'none', got ${describe((input as { kind?: unknown }).kind)}`
        : `must be { kind: 'lmdb' | 'fdb' | 'none', ... }, got ${describe(input)}`;
    },
  },
);

const cpus = availableParallelism();

/** A `consumers` entry as resolved: the options are `{}` when none were given. */
export interface ResolvedConsumer {
  readonly module: string;
  readonly options: Readonly<Record<string, unknown>>;
}

const MODULE = 'a module path or URL';
const ENTRY = `${MODULE}, or { module, options }`;

/**
 * Where and why a consumer's options are not JSON (the first bad field), or
 * null. They are structured-cloned to every worker: JSON keeps what a handler
 * sees the same as what a config file can say.
 */
function jsonProblem(value: unknown, path: PropertyKey[], depth: number): { path: PropertyKey[]; message: string } | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : { path, message: `must be JSON, got the number ${value}` };
    case 'object': {
      if (value === null) return null;
      if (depth > 64) return { path, message: 'nests deeper than 64 levels' };
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = jsonProblem(value[i], [...path, i], depth + 1);
          if (problem !== null) return problem;
        }
        return null;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return { path, message: 'must be JSON, got an object that is not plain' };
      for (const [key, v] of Object.entries(value)) {
        const problem = jsonProblem(v, [...path, key], depth + 1);
        if (problem !== null) return problem;
      }
      return null;
    }
    default:
      return { path, message: `must be JSON, got ${describe(value)}` };
  }
}

const consumerEntry = z.unknown().transform((value, ctx): ResolvedConsumer => {
  const fail = (message: string, path: PropertyKey[] = []) => {
    ctx.issues.push({ code: 'custom', message, input: value, path });
    return z.NEVER;
  };
  if (typeof value === 'string') return value.length > 0 ? { module: value, options: {} } : fail(`must be ${ENTRY}, got \`""\``);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(`must be ${ENTRY}, got ${describe(value)}`);
  const { module, options, ...rest } = value as { module?: unknown; options?: unknown };
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) return fail(`has unknown field(s) ${unknownKeys.map((k) => `\`${k}\``).join(', ')} (known: module, options)`);
  if (typeof module !== 'string' || module.length === 0) return fail(`must be ${MODULE}, got ${describe(module)}`, ['module']);
  if (options === undefined) return { module, options: {} };
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    return fail(`must be an object, got ${describe(options)}`, ['options']);
  const problem = jsonProblem(options, ['options'], 0);
  if (problem !== null) return fail(problem.message, problem.path);
  return { module, options: options as Record<string, unknown> };
}) as unknown as z.ZodType<ResolvedConsumer, ConsumerEntry>;

export const optionsSchema = section({
  store: storeSchema.default({ kind: 'lmdb', path: DEFAULT_LMDB_PATH, prefix: 'eventrail' }),
  consumers: z
    .array(consumerEntry, {
      error: (iss) => `must be an array of module paths or URLs (or { module, options }), got ${describe(iss.input)}`,
    })
    .default([]),
  pool: section({
    minThreads: positiveInt(1024).optional(),
    maxThreads: positiveInt(1024).default(Math.max(1, Math.min(4, cpus - 1))),
    concurrentTasksPerWorker: positiveInt(1024).default(4),
    idleTimeout: nonNegativeInt().default(30_000),
    /** piscina's: 'async' lets an idle worker's event loop run (consumers' background work goes on); 'sync' parks it. */
    atomics: oneOf(['async', 'sync', 'disabled']).default('async'),
    resourceLimits: section({
      maxOldGenerationSizeMb: positiveInt().optional(),
      maxYoungGenerationSizeMb: positiveInt().optional(),
      codeRangeSizeMb: positiveInt().optional(),
      stackSizeMb: positiveInt().optional(),
    }).optional(),
  }).prefault({}),
  dispatch: section({
    lanes: positiveInt(4096).default(8),
    maxBatch: positiveInt(65_535).default(1024),
    lingerMs: nonNegativeInt(60_000).default(1),
    partitionBy: oneOf(['user', 'tenant', 'correlation', 'none']).default('user'),
  }).prefault({}),
  delivery: section({
    maxAttempts: positiveInt(1000).default(5),
    backoff: section({
      initialMs: nonNegativeInt(3_600_000).default(100),
      maxMs: nonNegativeInt(3_600_000).default(30_000),
    }).prefault({}),
    handlerTimeoutMs: positiveInt(86_400_000).default(30_000),
  }).prefault({}),
  backpressure: section({
    maxPending: positiveInt().default(100_000),
    onOverflow: oneOf(['wait', 'reject']).default('wait'),
  }).prefault({}),
  audit: section({
    eventTypes: z
      .array(eventTypeSchema, { error: (iss) => `must be an array of event types, got ${describe(iss.input)}` })
      .default([...DEFAULT_AUDIT_TYPES]),
  }).prefault({}),
  limits: section({
    maxEventBytes: int('a byte count from 256 to 67108864', 256, 64 * 1024 * 1024).default(1024 * 1024),
    maxDepth: positiveInt(1000).default(64),
  }).prefault({}),
  checkpoint: section({
    intervalMs: nonNegativeInt(3_600_000).default(200),
    /**
     * This instance's id in the store's membership and leases. Unique per
     * process by default (host, pid and a random part): nothing about
     * correctness depends on setting it, it only names the instance in
     * `eventrail stats`.
     */
    instance: z
      .string({ error: (iss) => `must be a name of 1-128 letters, digits, _ . : -, got ${describe(iss.input)}` })
      .regex(/^[A-Za-z0-9_.:-]{1,128}$/, { error: (iss) => `must be a name of 1-128 letters, digits, _ . : -, got ${describe(iss.input)}` })
      .optional(),
  }).prefault({}),
  coordination: section({
    /** Partitions of the shared log; recorded when the store is created, the store's own count wins after that. */
    partitions: int('an integer from 1 to 4096', 1, 4096).default(16),
    /** How long a lease lasts without renewal: a lost instance's partitions are taken over after this. */
    leaseMs: int('milliseconds from 100 to 600000', 100, 600_000).default(10_000),
    /** Milliseconds between lease renewals (default: leaseMs / 4). */
    renewMs: positiveInt(300_000).optional(),
    /** lmdb: how often an instance looks for other instances' appends. */
    pollMs: int('milliseconds from 1 to 10000', 1, 10_000).default(25),
  }).prefault({}),
  // --- typed event catalogue and trace context (src/event/catalog.ts, src/trace/) ---
  /**
   * The event catalogue (defineEvents): payload schemas checked at emit, versions upcast on replay.
   * An object, so it cannot come from a JSON config file or the environment. Kept as it is (not frozen
   * over again: its zod schemas are not plain data).
   */
  events: z
    .custom<AnyEventCatalog>(isEventCatalog, {
      error: (iss) => `must be an event catalogue made by defineEvents(), got ${describe(iss.input)}`,
    })
    .optional(),
  tracing: section({
    /** With @opentelemetry/api installed: store the emit's trace context beside each event (default true). */
    enabled: z.boolean({ error: (iss) => `must be true or false, got ${describe(iss.input)}` }).default(true),
    /** A module each worker imports before the consumers, to register its tracer provider; handlers run in spans only with it. */
    setup: nonEmptyString('a module path or URL').optional(),
  }).prefault({}),
  // --- end of catalogue and tracing options ---
}).superRefine((o, ctx) => {
  if (o.pool.minThreads !== undefined && o.pool.minThreads > o.pool.maxThreads) {
    ctx.addIssue({
      code: 'custom',
      path: ['pool', 'minThreads'],
      message: `must not exceed pool.maxThreads (${o.pool.maxThreads}), got \`${o.pool.minThreads}\``,
    });
  }
  if (o.delivery.backoff.initialMs > o.delivery.backoff.maxMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['delivery', 'backoff', 'initialMs'],
      message: `must not exceed delivery.backoff.maxMs (${o.delivery.backoff.maxMs}), got \`${o.delivery.backoff.initialMs}\``,
    });
  }
  if (o.backpressure.maxPending < o.dispatch.maxBatch) {
    ctx.addIssue({
      code: 'custom',
      path: ['backpressure', 'maxPending'],
      message: `must be at least dispatch.maxBatch (${o.dispatch.maxBatch}), got \`${o.backpressure.maxPending}\``,
    });
  }
});

export type { BusOptions, ConsumerEntry };

/** What the schema accepts; the same type as BusOptions (test/types/options.ts checks it). */
export type OptionsInput = z.input<typeof optionsSchema>;
/** The resolved options, as the bus exposes them (frozen). */
export type ResolvedOptions = DeepReadonly<z.output<typeof optionsSchema>>;
export type StoreOptions = ResolvedOptions['store'];

type DeepReadonly<T> = T extends AnyEventCatalog
  ? T
  : T extends (infer U)[]
    ? readonly DeepReadonly<U>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** Reads and parses a JSON config file; errors name the file. */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigFileError(path, `cannot be read (${(err as Error).message})`, err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigFileError(path, `is not valid JSON (${(err as Error).message})`, err);
  }
}

const ENV_PREFIX = 'EVENTRAIL_';

const toEnvName = (path: readonly string[]) =>
  ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');

/** Every settable leaf of the schema, as a path. */
const ENV_PATHS: ReadonlyArray<readonly string[]> = [
  ['store', 'kind'],
  ['store', 'path'],
  ['store', 'prefix'],
  ['store', 'mapSize'],
  ['store', 'clusterFile'],
  ['store', 'apiVersion'],
  ['store', 'maxTransactionBytes'],
  ['consumers'],
  ['pool', 'minThreads'],
  ['pool', 'maxThreads'],
  ['pool', 'concurrentTasksPerWorker'],
  ['pool', 'idleTimeout'],
  ['pool', 'atomics'],
  ['pool', 'resourceLimits', 'maxOldGenerationSizeMb'],
  ['pool', 'resourceLimits', 'maxYoungGenerationSizeMb'],
  ['pool', 'resourceLimits', 'codeRangeSizeMb'],
  ['pool', 'resourceLimits', 'stackSizeMb'],
  ['dispatch', 'lanes'],
  ['dispatch', 'maxBatch'],
  ['dispatch', 'lingerMs'],
  ['dispatch', 'partitionBy'],
  ['delivery', 'maxAttempts'],
  ['delivery', 'backoff', 'initialMs'],
  ['delivery', 'backoff', 'maxMs'],
  ['delivery', 'handlerTimeoutMs'],
  ['backpressure', 'maxPending'],
  ['backpressure', 'onOverflow'],
  ['audit', 'eventTypes'],
  ['limits', 'maxEventBytes'],
  ['limits', 'maxDepth'],
  ['checkpoint', 'intervalMs'],
  ['checkpoint', 'instance'],
  ['coordination', 'partitions'],
  ['coordination', 'leaseMs'],
  ['coordination', 'renewMs'],
  ['coordination', 'pollMs'],
  ['tracing', 'enabled'],
  ['tracing', 'setup'],
];
const ENV_BY_NAME = new Map(ENV_PATHS.map((p) => [toEnvName(p), p]));

/** The environment variable that sets an option path, e.g. `EVENTRAIL_POOL_MAX_THREADS`. */
export function envNameOf(path: readonly string[]): string {
  return toEnvName(path);
}

/**
 * Converts an environment string: numbers to numbers, JSON arrays/objects
 * parsed, comma lists for array options; anything else stays a string so
 * that the schema reports it with the variable's value.
 */
function envValue(path: readonly string[], raw: string): unknown {
  const trimmed = raw.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return raw;
    }
  }
  if (path[0] === 'consumers' || path[1] === 'eventTypes') {
    return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
  }
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  // Only for the boolean options: elsewhere 'true' stays text, and the schema names what it expected.
  if (path[0] === 'tracing' && path[1] === 'enabled' && (trimmed === 'true' || trimmed === 'false')) return trimmed === 'true';
  return raw;
}

function applyEnv(base: Record<string, unknown>, env: NodeJS.ProcessEnv): { merged: Record<string, unknown>; unknown: string[] } {
  // Copies only the objects on an overridden path (not structuredClone): the caller's object stays
  // untouched, and a value that cannot be cloned (a function given by mistake) reaches the schema,
  // which names it, instead of throwing a DataCloneError.
  const merged: Record<string, unknown> = { ...base };
  const unknownVars: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const path = ENV_BY_NAME.get(name);
    if (!path) {
      unknownVars.push(name);
      continue;
    }
    let node = merged;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      node[key] = next === null || typeof next !== 'object' || Array.isArray(next) ? {} : { ...(next as Record<string, unknown>) };
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = envValue(path, raw);
  }
  return { merged, unknown: unknownVars };
}

/** Environment variables that are not options of eventrail's. */
const IGNORED_ENV = new Set<string>();

export interface ResolveContext {
  env?: NodeJS.ProcessEnv;
}

/**
 * Resolves options from an options object or a JSON config file path, plus the
 * environment. Throws InvalidOptionsError naming every bad field, its value and
 * what was expected.
 */
export function resolveOptions(input: BusOptions | string | undefined, context: ResolveContext = {}): ResolvedOptions {
  let source: string | undefined;
  let raw: unknown = input ?? {};
  let baseDir = process.cwd();
  if (typeof input === 'string') {
    source = resolvePath(input);
    raw = readConfigFile(source);
    baseDir = resolvePath(source, '..');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidOptionsError([{ path: '', message: `options must be an object, got ${describe(raw)}` }], source);
  }
  const { merged, unknown: unknownVars } = applyEnv(raw as Record<string, unknown>, context.env ?? process.env);
  const issues = unknownVars
    .filter((name) => !IGNORED_ENV.has(name))
    .map((name) => ({ path: name, message: `${name} is not an eventrail option (known: ${[...ENV_BY_NAME.keys()].join(', ')})` }));
  const result = optionsSchema.safeParse(merged, { reportInput: true });
  if (!result.success) issues.push(...toIssues(result.error));
  if (issues.length > 0 || !result.success) throw new InvalidOptionsError(issues, source);
  const options = result.data;
  if (source) {
    // Relative paths in a config file are relative to the file, not to the process.
    options.consumers = options.consumers.map((c) => (isRelativePath(c.module) ? { ...c, module: resolvePath(baseDir, c.module) } : c));
    if (options.tracing.setup !== undefined && isRelativePath(options.tracing.setup))
      options.tracing.setup = resolvePath(baseDir, options.tracing.setup);
    if (options.store.kind === 'lmdb' && !options.store.path.startsWith('/')) options.store.path = resolvePath(baseDir, options.store.path);
  }
  return deepFreezeOptions(options);
}

/** Like the bus's module specifiers: anything that is neither a URL nor an absolute path is relative ('x/y.js' too). */
const isRelativePath = (s: string) => !isAbsolute(s) && !(/^[a-z][a-z0-9+.-]*:/i.test(s) && !/^[a-z]:[\\/]/i.test(s));

function deepFreezeOptions<T>(value: T): T {
  // An event catalogue freezes itself; its zod schemas must stay as zod made them.
  if (value !== null && typeof value === 'object' && !isEventCatalog(value)) {
    for (const v of Object.values(value)) deepFreezeOptions(v);
    Object.freeze(value);
  }
  return value;
}
