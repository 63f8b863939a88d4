/**
 * Buffer's own string methods, called without the argument handling of
 * `write()` and `toString()`, which costs more than the copy for a uuid. They
 * are present on every Buffer but not in Node's type declarations.
 */
interface NativeBuffer {
  utf8Write(text: string, offset: number): number;
  latin1Slice(start: number, end: number): string;
}

/** Writes `text` as UTF-8 at `offset` (as much as fits); returns the bytes written. */
export function utf8Write(out: Buffer, text: string, offset: number): number {
  return (out as unknown as NativeBuffer).utf8Write(text, offset);
}

/** Reads bytes `start` to `end` as latin1 text. */
export function latin1Slice(bytes: Buffer, start: number, end: number): string {
  return (bytes as unknown as NativeBuffer).latin1Slice(start, end);
}
