/**
 * The hot path of a worker: BATCH bytes straight to stored CSV rows, validating on the
 * bytes, with no Bet object or string per field. Invariant: it accepts exactly the batches
 * that decodeBets + betProblem accept and writes exactly what betsToRows would; on any
 * doubt it answers `null` and the caller takes the slow path, which also words the error
 * (test/transcode.test.ts checks both claims on random and mutated batches).
 */
import { isUtf8 } from 'node:buffer';
import { MAX_NUMBER } from '../../shared/domain/bet.js';

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
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = m === 2 ? (leap ? 29 : 28) : m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
  return d <= days;
}

/**
 * Copies a name field, quoting it when it holds a comma or a quote. Returns the new output
 * position, or -1 when the name needs the slow path (empty, control bytes, only
 * blanks or non-ASCII that trim() might eat, invalid UTF-8).
 */
function copyName(src: Buffer, p: number, len: number, out: Buffer, o: number): number {
  if (len === 0) return -1;
  let visible = false;
  let quote = false;
  let ascii = true;
  for (let i = p; i < p + len; i++) {
    const c = src[i]!;
    if (c < 0x20 || c === 0x7f) return -1;
    if (c >= 0x80) ascii = false;
    else if (c !== 0x20) visible = true;
    if (c === COMMA || c === QUOTE) quote = true;
  }
  if (!visible || (!ascii && !isUtf8(src.subarray(p, p + len)))) return -1;
  if (!quote) return o + src.copy(out, o, p, p + len);
  out[o++] = QUOTE;
  for (let i = p; i < p + len; i++) {
    const c = src[i]!;
    out[o++] = c;
    if (c === QUOTE) out[o++] = QUOTE;
  }
  out[o++] = QUOTE;
  return o;
}

function writeNumber(out: Buffer, o: number, n: number): number {
  return o + out.write(String(n), o, 'latin1');
}

/**
 * Transcodes `count` bets of `agency` from `src` into `out` at `o`. Returns the end offset
 * in `out`, or null when the batch must take the slow path (bad or unusual input).
 */
export function transcodeBatch(src: Buffer, count: number, agency: number, out: Buffer, o: number): number | null {
  const prefix = `${agency},`;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 4 > src.length || src.readUInt32BE(p) !== agency) return null;
    p += 4;
    o += out.write(prefix, o, 'latin1');
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
    for (let k = p + 1; k <= p + docLen; k++) if (src[k]! < ZERO || src[k]! > NINE) return null;
    o += src.copy(out, o, p + 1, p + 1 + docLen);
    out[o++] = COMMA;
    p += 1 + docLen;
    if (src[p] !== 10 || p + 11 + 2 > src.length || !realDate(src, p + 1)) return null;
    o += src.copy(out, o, p + 1, p + 11);
    out[o++] = COMMA;
    p += 11;
    const number = src.readUInt16BE(p);
    if (number > MAX_NUMBER) return null;
    o = writeNumber(out, o, number);
    out[o++] = 0x0d;
    out[o++] = 0x0a;
    p += 2;
  }
  return p === src.length ? o : null;
}
