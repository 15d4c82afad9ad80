/**
 * The hot path of a worker: BATCH bytes straight to stored CSV rows, validating on the
 * bytes, with no Bet object or string per field. Invariant: it accepts exactly the batches
 * that decodeBets + betProblem accept and writes exactly what betsToRows would; on any
 * doubt it answers `null` and the caller takes the slow path, which also words the error
 * (test/transcode.test.ts checks both claims on random and mutated batches).
 */
import { MAX_NUMBER, daysInMonth } from '../../shared/domain/bet.js';

const COMMA = 0x2c;
const QUOTE = 0x22;
const ZERO = 0x30;
const NINE = 0x39;
const DASH = 0x2d;

/** Worst case for one input byte: a quote doubled; plus per bet: agency, separators, number. */
export function maxRowsSize(inputBytes: number, count: number): number {
  return inputBytes * 2 + count * 32;
}

function digitsAt(b: Buffer, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = b[p + i]!;
    if (c < ZERO || c > NINE) return -1;
    v = v * 10 + (c - ZERO);
  }
  return v;
}

function realDate(b: Buffer, p: number): boolean {
  if (b[p + 4] !== DASH || b[p + 7] !== DASH) return false;
  const y = digitsAt(b, p, 4);
  const m = digitsAt(b, p + 5, 2);
  const d = digitsAt(b, p + 8, 2);
  return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

/** Length of the well-formed UTF-8 sequence starting at `i` (before `end`), or 0. */
function utf8Length(b: Buffer, i: number, end: number): number {
  const c = b[i]!;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > end) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const c1 = b[i + 1]!;
  // Overlong forms, surrogates and code points past U+10FFFF.
  if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0;
  return n;
}

/**
 * Copies a name field byte by byte (short fields: cheaper than a native call), quoting it
 * when it holds a comma or a quote. Returns the new output position, or -1 when the name
 * needs the slow path (empty, control bytes, invalid UTF-8, or no visible ASCII character,
 * where only trim() knows whether it is blank).
 */
function copyName(src: Buffer, p: number, len: number, out: Buffer, o: number): number {
  if (len === 0) return -1;
  const end = p + len;
  let visible = false;
  let quote = false;
  for (let i = p; i < end; ) {
    const c = src[i]!;
    if (c < 0x80) {
      if (c < 0x20 || c === 0x7f) return -1;
      if (c !== 0x20) visible = true;
      if (c === COMMA || c === QUOTE) quote = true;
      i++;
    } else {
      const n = utf8Length(src, i, end);
      if (n === 0) return -1;
      i += n;
    }
  }
  if (!visible) return -1;
  if (quote) out[o++] = QUOTE;
  for (let i = p; i < end; i++) {
    const c = src[i]!;
    out[o++] = c;
    if (c === QUOTE) out[o++] = QUOTE;
  }
  if (quote) out[o++] = QUOTE;
  return o;
}

/** Writes 0..99999 in decimal without leading zeros. */
function writeNumber(out: Buffer, o: number, n: number): number {
  if (n >= 10000) out[o++] = ZERO + (Math.floor(n / 10000) % 10);
  if (n >= 1000) out[o++] = ZERO + (Math.floor(n / 1000) % 10);
  if (n >= 100) out[o++] = ZERO + (Math.floor(n / 100) % 10);
  if (n >= 10) out[o++] = ZERO + (Math.floor(n / 10) % 10);
  out[o++] = ZERO + (n % 10);
  return o;
}

/**
 * Transcodes `count` bets of `agency` from `src` into `out` at `o`. Returns the end offset
 * in `out`, or null when the batch must take the slow path (bad or unusual input).
 */
export function transcodeBatch(src: Buffer, count: number, agency: number, out: Buffer, o: number): number | null {
  const prefix = Buffer.from(`${agency},`, 'latin1');
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 4 > src.length || src.readUInt32BE(p) !== agency) return null;
    p += 4;
    for (let k = 0; k < prefix.length; k++) out[o++] = prefix[k]!;
    for (let f = 0; f < 2; f++) {
      const len = src[p];
      if (len === undefined || p + 1 + len > src.length) return null;
      o = copyName(src, p + 1, len, out, o);
      if (o < 0) return null;
      out[o++] = COMMA;
      p += 1 + len;
    }
    const docLen = src[p];
    if (docLen === undefined || docLen < 1 || docLen > 10 || p + 1 + docLen > src.length) return null;
    for (let k = p + 1; k <= p + docLen; k++) {
      const c = src[k]!;
      if (c < ZERO || c > NINE) return null;
      out[o++] = c;
    }
    out[o++] = COMMA;
    p += 1 + docLen;
    if (src[p] !== 10 || p + 11 + 2 > src.length || !realDate(src, p + 1)) return null;
    for (let k = p + 1; k < p + 11; k++) out[o++] = src[k]!;
    out[o++] = COMMA;
    p += 11;
    const number = (src[p]! << 8) | src[p + 1]!;
    if (number > MAX_NUMBER) return null;
    o = writeNumber(out, o, number);
    out[o++] = 0x0d;
    out[o++] = 0x0a;
    p += 2;
  }
  return p === src.length ? o : null;
}
