/**
 * Timestamps as chrono reads and writes them: RFC 3339 with leap seconds and
 * extended years, normalised to UTC the way serde writes `DateTime<Utc>`, and
 * their milliseconds for the time index.
 */

/**
 * RFC 3339 as chrono reads it: a year of 4 digits, or a signed one of 4 to 6
 * digits (chrono's extended years, `+10000-01-01T00:00:00Z`), a second of 60
 * (a leap second, at any minute: chrono has no table of them), 1 to 9
 * fraction digits.
 */
export const RFC3339 = /^([+-]\d{4,6}|\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** chrono's NaiveDate range. */
const MIN_YEAR = -262144;
const MAX_YEAR = 262143;

/** chrono writes the nanoseconds as nothing, or 3, 6 or 9 digits: the fewest that hold them. */
function chronoFraction(digits: string): string {
  const nanos = digits.padEnd(9, '0');
  if (nanos === '000000000') return '';
  if (nanos.endsWith('000000')) return `.${nanos.slice(0, 3)}`;
  if (nanos.endsWith('000')) return `.${nanos.slice(0, 6)}`;
  return `.${nanos}`;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** A year as chrono writes it: 4 digits from 0 to 9999, else signed (`+10000`, `-0001`). */
function chronoYear(year: number): string {
  if (year >= 0 && year <= 9999) return pad(year, 4);
  return year > 0 ? `+${year}` : `-${pad(-year, 4)}`;
}

/**
 * An RFC 3339 timestamp as serde writes chrono's `DateTime<Utc>`: in UTC with
 * "Z", every fraction digit kept (Date would cut them to milliseconds), 0, 3,
 * 6 or 9 of them; a leap second stays second 60, moved with its minute; a
 * year beyond 0-9999 signed. Null when chrono would not read it: Date.parse
 * takes February 30 and 24:00, chrono does not.
 */
export function toUtcTimestamp(s: string): string | null {
  const m = RFC3339.exec(s);
  if (m === null) return null;
  const [, y, mo, d, h, mi, sec, fraction = '', zone = 'Z'] = m as unknown as string[];
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  const second = Number(sec);
  if (days === undefined || day < 1 || day > days || Number(h) > 23 || Number(mi) > 59 || second > 60) return null;
  if (year < MIN_YEAR || year > MAX_YEAR) return null;
  // Through Date for the calendar arithmetic of the offset: setUTCFullYear, as Date.UTC reads years 0-99 as 19xx.
  const at = new Date(0);
  at.setUTCFullYear(year, month - 1, day);
  at.setUTCHours(Number(h), Number(mi), second === 60 ? 59 : second, 0);
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const offsetMinutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
    if (Number(zone.slice(4, 6)) > 59) return null;
    at.setTime(at.getTime() - sign * offsetMinutes * 60_000);
  }
  const utcYear = at.getUTCFullYear();
  if (utcYear < MIN_YEAR || utcYear > MAX_YEAR) return null;
  const seconds = second === 60 ? '60' : pad(at.getUTCSeconds(), 2);
  return `${chronoYear(utcYear)}-${pad(at.getUTCMonth() + 1, 2)}-${pad(at.getUTCDate(), 2)}T${pad(at.getUTCHours(), 2)}:${pad(at.getUTCMinutes(), 2)}:${seconds}${chronoFraction(fraction)}Z`;
}

/**
 * Milliseconds since the epoch of a timestamp as toUtcTimestamp() writes it,
 * for the time index. A leap second counts as chrono counts it
 * (`timestamp_millis`): 23:59:60.5 is 23:59:59 plus 1.5 s.
 */
export function timestampMs(utc: string): number {
  const ms = Date.parse(utc);
  if (!Number.isNaN(ms)) return ms;
  const m = RFC3339.exec(utc);
  if (m === null) return NaN;
  const [, y, mo, d, h, mi, sec, fraction = ''] = m as unknown as string[];
  const at = new Date(0);
  at.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  const second = Number(sec);
  at.setUTCHours(Number(h), Number(mi), second === 60 ? 59 : second, Number(fraction.padEnd(3, '0').slice(0, 3)));
  return at.getTime() + (second === 60 ? 1000 : 0);
}
