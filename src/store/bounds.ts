/**
 * What limits a scan of events or audit entries, shared by every backend:
 * a query's `after`/`until` positions and `fromMs`/`toMs` times resolved to
 * the range of blocks to read, and the per-event checks within those blocks.
 */
import type { AuditFrame } from './layout/audit-blocks.js';
import type { DecodedBlock } from './layout/blocks.js';
import { checkPosition, positionOf, stampOf, type Stamp } from './layout/positions.js';
import { StoreCorruptError } from '../errors.js';
import type { CorruptHandler, Position, ReadEventsQuery, StoredEvent } from './store.js';

/** Events (or entries) per page when a query does not say. */
export const DEFAULT_PAGE_SIZE = 1024;
/** Keys per read while scanning the time index for the stamps a time range covers. */
export const TIME_SCAN_PAGE = 4096;

export interface Bounds {
  readonly after: Position | undefined;
  readonly until: Position | undefined;
  /** Blocks to read: from `fromStamp` to `untilStamp`, inclusive. */
  readonly fromStamp: Stamp | undefined;
  readonly untilStamp: Stamp | undefined;
  readonly fromMs: number | undefined;
  readonly toMs: number | undefined;
}

/** The smallest key after `key`. */
export const keyAfter = (key: Buffer): Buffer => Buffer.concat([key, Buffer.from([0x00])]);

const maxStamp = (a: Stamp | undefined, b: Stamp | undefined) => (a === undefined ? b : b === undefined || a.compare(b) >= 0 ? a : b);
const minStamp = (a: Stamp | undefined, b: Stamp | undefined) => (a === undefined ? b : b === undefined || a.compare(b) <= 0 ? a : b);

/**
 * Resolves a query's bounds to the stamps of the blocks to read, or null when
 * nothing can match. A time range becomes the least and greatest stamp that
 * its `ts` index keys name (`stampsInTime`, the backend's scan of that index),
 * and the blocks between are filtered by the timestamps in their headers. User
 * timestamps need not follow positions, so a time range cannot be read from
 * the index in position order without holding its whole result; this way
 * memory stays one page, at the cost of reading the index keys once.
 */
export async function resolveBounds(
  query: ReadEventsQuery,
  stampsInTime: (fromMs: number | undefined, toMs: number | undefined) => Promise<{ first: Stamp; last: Stamp } | null>,
): Promise<Bounds | null> {
  const after = query.after === undefined ? undefined : checkPosition(query.after, 'after');
  const until = query.until === undefined ? undefined : checkPosition(query.until, 'until');
  let fromStamp = after && stampOf(after);
  let untilStamp = until && stampOf(until);
  const { fromMs, toMs } = query;
  if (fromMs !== undefined || toMs !== undefined) {
    if (fromMs !== undefined && toMs !== undefined && !(fromMs < toMs)) return null;
    const covered = await stampsInTime(fromMs, toMs);
    if (!covered) return null;
    fromStamp = maxStamp(fromStamp, covered.first);
    untilStamp = minStamp(untilStamp, covered.last);
  }
  if (fromStamp && untilStamp && fromStamp.compare(untilStamp) > 0) return null;
  return { after, until, fromStamp, untilStamp, fromMs, toMs };
}

/** Folds a stamp into the least and greatest seen so far. */
export function widen(seen: { first: Stamp | undefined; last: Stamp | undefined }, stamp: Stamp): void {
  if (seen.first === undefined || stamp.compare(seen.first) < 0) seen.first = stamp;
  if (seen.last === undefined || stamp.compare(seen.last) > 0) seen.last = stamp;
}

export function pageSizeOf(pageSize: number | undefined): number {
  if (pageSize === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  return pageSize;
}

export function withinTime(bounds: Bounds, timestampMs: number): boolean {
  return (bounds.fromMs === undefined || timestampMs >= bounds.fromMs) && (bounds.toMs === undefined || timestampMs < bounds.toMs);
}

export function withinPositions(bounds: Bounds, position: Position): boolean {
  return (
    (bounds.after === undefined || position.compare(bounds.after) > 0) &&
    (bounds.until === undefined || position.compare(bounds.until) <= 0)
  );
}

export function pushIfWithin(page: StoredEvent[], bounds: Bounds, stamp: Stamp, index: number, block: DecodedBlock): void {
  if (!withinTime(bounds, block.timestampMs(index))) return;
  const position = positionOf(stamp, index);
  if (withinPositions(bounds, position)) page.push({ position, bytes: block.bytes(index) });
}

/** An entry of the audit block at `stamp` that an audit query (its tenant and bounds) returns. */
export function auditFrameWanted(query: { readonly tenantId?: string }, bounds: Bounds, stamp: Stamp, frame: AuditFrame): boolean {
  if (query.tenantId !== undefined && frame.tenantId !== query.tenantId) return false;
  return withinTime(bounds, frame.timestampMs) && withinPositions(bounds, positionOf(stamp, frame.index));
}

/** `err` as a StoreCorruptError: itself, or wrapped with what was being read. */
export function asCorrupt(err: unknown, what: string): StoreCorruptError {
  if (err instanceof StoreCorruptError) return err;
  return new StoreCorruptError(`${what}: ${err instanceof Error ? err.message : String(err)}`, err);
}

/** Hands a corrupt value to the reader's handler, so the read skips it; without one, the read fails with it. */
export function reportCorrupt(onCorrupt: CorruptHandler | undefined, error: StoreCorruptError): void {
  if (onCorrupt === undefined) throw error;
  onCorrupt(error);
}

/**
 * What one page of a FoundationDB read may cost before it ends and the read
 * continues in a new transaction: bytes of values read (every chunk fetched,
 * not only what the page yields) and block fetches (each a round trip,
 * windows of them in parallel). A page ends at a block boundary, so it may go
 * one block or one window past a limit.
 */
export interface PageLimits {
  readonly bytes: number;
  readonly blocks: number;
}

/** The bytes and block fetches a page has spent so far, and what it may still do. */
export class PageMeter {
  readonly limits: PageLimits;
  bytes = 0;
  blocks = 0;

  constructor(limits: PageLimits) {
    this.limits = limits;
  }

  add(bytes: number, blocks = 0): void {
    this.bytes += bytes;
    this.blocks += blocks;
  }

  /** True once the page has read its bytes or its block fetches: a scan stops at the next block boundary. */
  get spent(): boolean {
    return this.bytes >= this.limits.bytes || this.blocks >= this.limits.blocks;
  }

  /**
   * How many of the `waiting` block fetches of a page to make next, in
   * parallel: up to `window`, and none once the page has read its bytes,
   * except that a page that has `resolved` nothing yet always goes on, so
   * every page makes progress however large one block is.
   */
  nextWindow(waiting: number, window: number, resolved: number): number {
    if (waiting <= 0) return 0;
    if (resolved > 0 && this.bytes >= this.limits.bytes) return 0;
    return Math.min(waiting, Math.max(1, window));
  }
}
