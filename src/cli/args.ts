/**
 * Command-line parsing: node's `util.parseArgs` in strict mode, plus value
 * checks. Every mistake is a UsageError, which main.ts prints with a pointer
 * to `--help` and turns into exit code 2.
 */
import type { ParseArgsConfig } from 'node:util';
import { BUILTIN_EVENT_TYPES, type EventType } from '../event/event.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly command: string;

  constructor(command: string, message: string) {
    super(message);
    this.command = command;
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** The `--store` and `--config` flags every command takes. */
export const STORE_OPTIONS = {
  store: { type: 'string' },
  config: { type: 'string' },
} as const satisfies Options;

export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

/**
 * `parseArgs` in strict mode (unknown flags and missing values are errors),
 * with its errors as UsageErrors: `parse('stats', () => parseArgs({ args, options, strict: true }))`.
 * The call stays at the command so that its values keep their precise types.
 */
export function parse<T extends { readonly positionals: readonly string[] }>(command: string, run: () => T, positionals = 0): T {
  let parsed: T;
  try {
    parsed = run();
  } catch (err) {
    throw new UsageError(command, plainParseError(err));
  }
  if (parsed.positionals.length > positionals) {
    throw new UsageError(command, `unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`);
  }
  return parsed;
}

/** parseArgs' messages, without the advice about `--` that does not apply here. */
function plainParseError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .split('. To specify a positional argument')[0]!
    .replace(/\s+$/, '')
    .replace(/^Unknown option/, 'unknown option');
}

export function requireValue(command: string, flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(command, `--${flag} needs a value`);
  return value;
}

/** `1,2,4` → [1, 2, 4]; each an integer in [min, max], no repeats. */
export function intList(command: string, flag: string, value: string | undefined, min: number, max: number): number[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim());
  const numbers = items.map((item) => {
    if (!/^\d+$/.test(item) || Number(item) < min || Number(item) > max) {
      throw new UsageError(
        command,
        `--${flag} takes a comma-separated list of integers from ${min} to ${max} (e.g. --${flag} ${min},${Math.min(max, min * 2)}), got \`${value}\``,
      );
    }
    return Number(item);
  });
  if (new Set(numbers).size !== numbers.length) throw new UsageError(command, `--${flag} lists a value twice: \`${value}\``);
  return numbers;
}

export function positiveInt(command: string, flag: string, value: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(command, `--${flag} must be an integer from 1 to ${max}, got \`${value}\``);
  }
  return Number(value);
}

/** An RFC 3339 time, a date, or ms since the epoch. */
export function timeBound(command: string, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(
      command,
      `--${flag} must be an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01) or ms since the epoch, got \`${value}\``,
    );
  }
  // V8 rolls a day past the month's end over (2024-02-31 parses as March 2): such a date is a typo, not a bound.
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (date !== null) {
    const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
    const monthEnd = new Date(0);
    monthEnd.setUTCFullYear(year, month, 0); // day 0 of the next month; setUTCFullYear keeps years below 100 as given
    const days = monthEnd.getUTCDate();
    if (day > days)
      throw new UsageError(
        command,
        `--${flag} names a day that does not exist: ${date[0]} (${year}-${date[2]} has ${days} days), got \`${value}\``,
      );
  }
  return ms;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function uuid(command: string, flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!UUID.test(value)) throw new UsageError(command, `--${flag} must be a UUID, got \`${value}\``);
  return value.toLowerCase();
}

const BUILTIN = new Set<string>(BUILTIN_EVENT_TYPES);

/** `--type` values (repeated, or comma lists): builtin names, or `Custom:name` for custom types. */
export function eventTypes(command: string, values: readonly string[] | undefined): EventType[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .map((v): EventType => {
      if (BUILTIN.has(v)) return v as EventType;
      if (v.startsWith('Custom:') && v.length > 'Custom:'.length) return { Custom: v.slice('Custom:'.length) };
      throw new UsageError(
        command,
        `--type must be one of ${BUILTIN_EVENT_TYPES.join(', ')}, or Custom:NAME for a custom type, got \`${v}\``,
      );
    });
}

/** The read filters `replay` and `audit` share. */
export const FILTER_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  tenant: { type: 'string' },
  type: { type: 'string', multiple: true },
  limit: { type: 'string' },
} as const satisfies Options;

export interface Filters {
  readonly fromMs: number | undefined;
  readonly toMs: number | undefined;
  readonly tenantId: string | undefined;
  readonly types: EventType[] | undefined;
  readonly limit: number | undefined;
}

/** The values of FILTER_OPTIONS, checked. */
export function filtersOf(
  command: string,
  values: { from?: string; to?: string; tenant?: string; type?: readonly string[]; limit?: string },
): Filters {
  return {
    fromMs: timeBound(command, 'from', values.from),
    toMs: timeBound(command, 'to', values.to),
    tenantId: uuid(command, 'tenant', values.tenant),
    types: eventTypes(command, values.type),
    limit: positiveInt(command, 'limit', values.limit),
  };
}
