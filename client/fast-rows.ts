/**
 * The client's fast path: one plain CSV row (no quote, no carriage return) straight to a
 * bet in wire form, validating on the bytes, with no string or object per field.
 * Invariant: for a row it takes, it writes exactly what parseAgencyRecord + writeBet write
 * for csv-parse's record of that row (the row cut at its commas, each field decoded as
 * UTF-8). For anything else it answers a RowKind and writes nothing: ROW_CSV (a quote or a
 * CR: csv-parse reads it), ROW_EMPTY (an empty line), or ROW_FIELDS (the caller cuts the row
 * into strings and takes the object path, which also words the error).
 * test/fast-rows.test.ts checks both claims on random and mutated rows. Runs of plain lines
 * take the WebAssembly twin of this path (wasm-rows.ts), which takes each row as this does.
 */
import { MAX_NUMBER } from '../shared/domain/bet.js';
import { NAME_DOUBT, digitsAt, isRealDateAt, scanName } from '../shared/domain/bet-bytes.js';

export const RowKind = { CSV: -1, FIELDS: -2, EMPTY: -3 } as const;

const COMMA = 0x2c;
const QUOTE = 0x22;
const CR = 0x0d;

/** String.prototype.trim's ASCII whitespace, less LF and CR (never inside a plain row). */
function isAsciiSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c;
}

/**
 * True when the character that starts (`lead` at index i) or ends a name may be a
 * non-ASCII space that trim() removes: U+00A0 (C2 A0), or any three-byte character led by
 * E1, E2, E3 or EF (U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF
 * and their neighbours; the doubt costs only the object path).
 */
function mayBeWideSpace(b: Buffer, i: number): boolean {
  const c = b[i]!;
  return (c === 0xc2 && b[i + 1] === 0xa0) || c === 0xe1 || c === 0xe2 || c === 0xe3 || c === 0xef;
}

/** Where a field starts once leading ASCII spaces are skipped. */
function trimStart(b: Buffer, a: number, z: number): number {
  while (a < z && isAsciiSpace(b[a]!)) a++;
  return a;
}
/** Where a field ends once trailing ASCII spaces are dropped. */
function trimEnd(b: Buffer, a: number, z: number): number {
  while (z > a && isAsciiSpace(b[z - 1]!)) z--;
  return z;
}

/** Copies b[a, z) as a str8 at out[o]; returns the new offset. z - a <= 255. */
function putStr8(b: Buffer, a: number, z: number, out: Buffer, o: number): number {
  out[o++] = z - a;
  for (let i = a; i < z; i++) out[o++] = b[i]!;
  return o;
}

/** Cut points of the current row: the four commas. */
const cuts = new Int32Array(4);

/**
 * Writes the bet of the plain row src[s, e) (no line end) at out[o] and returns the new
 * offset, or a RowKind (see above). `out` needs MAX_PLAIN_BET bytes of room.
 */
export function encodePlainRow(src: Buffer, s: number, e: number, agency: number, out: Buffer, o: number): number {
  if (s === e) return RowKind.EMPTY;
  let commas = 0;
  for (let i = s; i < e; i++) {
    const c = src[i]!;
    if (c === COMMA) {
      if (commas < 4) cuts[commas] = i;
      commas++;
    } else if (c === QUOTE || c === CR) {
      return RowKind.CSV;
    }
  }
  return commas === 4 ? writeRow(src, s, e, agency, out, o) : RowKind.FIELDS;
}

/** The most a plain row's bet takes: agency, two 255-byte names, document, date, number. */
export const MAX_PLAIN_BET = 4 + 2 * 256 + 11 + 11 + 2;

/** The row src[s, e) with its four commas in `cuts`: its bet at out[o], or RowKind.FIELDS. */
function writeRow(src: Buffer, s: number, e: number, agency: number, out: Buffer, o: number): number {
  const c0 = cuts[0]!;
  const c1 = cuts[1]!;
  const c2 = cuts[2]!;
  const c3 = cuts[3]!;
  const nameA = trimStart(src, s, c0);
  const nameZ = trimEnd(src, nameA, c0);
  const lastA = trimStart(src, c0 + 1, c1);
  const lastZ = trimEnd(src, lastA, c1);
  const docA = trimStart(src, c1 + 1, c2);
  const docZ = trimEnd(src, docA, c2);
  const dateA = trimStart(src, c2 + 1, c3);
  const dateZ = trimEnd(src, dateA, c3);
  const numA = trimStart(src, c3 + 1, e);
  const numZ = trimEnd(src, numA, e);
  if (!isPlainName(src, nameA, nameZ) || !isPlainName(src, lastA, lastZ)) return RowKind.FIELDS;
  const docLen = docZ - docA;
  if (docLen < 1 || docLen > 10 || digitsAt(src, docA, docLen) < 0) return RowKind.FIELDS;
  if (dateZ - dateA !== 10 || !isRealDateAt(src, dateA)) return RowKind.FIELDS;
  const numLen = numZ - numA;
  const number = numLen >= 1 && numLen <= 4 ? digitsAt(src, numA, numLen) : -1;
  if (number < 0 || number > MAX_NUMBER) return RowKind.FIELDS;

  out[o] = agency >>> 24;
  out[o + 1] = agency >>> 16;
  out[o + 2] = agency >>> 8;
  out[o + 3] = agency;
  o = putStr8(src, nameA, nameZ, out, o + 4);
  o = putStr8(src, lastA, lastZ, out, o);
  o = putStr8(src, docA, docZ, out, o);
  o = putStr8(src, dateA, dateZ, out, o);
  out[o] = number >>> 8;
  out[o + 1] = number;
  return o + 2;
}

/** A name that trim() leaves as it is (no wide space at either end) and bet.ts accepts. */
function isPlainName(b: Buffer, a: number, z: number): boolean {
  if (a >= z || scanName(b, a, z) === NAME_DOUBT) return false;
  if (b[a]! >= 0x80 && mayBeWideSpace(b, a)) return false;
  if (b[z - 1]! < 0x80) return true;
  let lead = z - 1;
  while (lead > a && (b[lead]! & 0xc0) === 0x80) lead--;
  return !mayBeWideSpace(b, lead);
}
