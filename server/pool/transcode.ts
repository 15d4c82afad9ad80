/**
 * The hot path of a worker: BATCH bytes straight to stored CSV rows, validating on the
 * bytes, with no Bet object or string per field. Invariant: it accepts exactly the batches
 * that decodeBets + betProblem accept and writes exactly what betsToRows would; on any
 * doubt it answers `null` and the caller takes the slow path, which also words the error
 * (test/transcode.test.ts checks both claims on random and mutated batches, for the
 * WebAssembly transcoder and for its JavaScript twin).
 */
import { MAX_NUMBER } from '../../shared/domain/bet.js';
import { NAME_DOUBT, NAME_HAS_SPECIAL, isRealDateAt, scanName } from '../../shared/domain/bet-bytes.js';
import { globalsOf, onFirstUse } from '../../shared/util/wasm.js';
import { TRANSCODE_WASM } from './transcode-wasm.js';

const COMMA = 0x2c;
const QUOTE = 0x22;
const ZERO = 0x30;
const NINE = 0x39;

/** Worst case for one input byte: a quote doubled; plus per bet: agency, separators, number. */
export function maxRowsSize(inputBytes: number, count: number): number {
  return inputBytes * 2 + count * 32;
}

/**
 * Copies a name field byte by byte (short fields: cheaper than a native call), quoting it
 * when it holds a comma or a quote. Returns the new output position, or -1 when the name
 * needs the slow path (see scanName: empty, control characters C0/DEL/C1, invalid UTF-8,
 * or no visible ASCII character, where only trim() knows whether it is blank).
 */
function copyName(src: Buffer, p: number, len: number, out: Buffer, o: number): number {
  const end = p + len;
  const scan = scanName(src, p, end);
  if (scan === NAME_DOUBT) return -1;
  const quote = scan === NAME_HAS_SPECIAL;
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

/** The module's memory layout (byte offsets and sizes), as wasm/transcode.ts exports it. */
const LAYOUT = ['SRC', 'SRC_CAP', 'OUT', 'OUT_CAP'] as const;
type Layout = Record<(typeof LAYOUT)[number], number>;

/** The module's exports. */
type Exports = { memory: { buffer: ArrayBuffer }; transcode: TranscodeFn } & Record<keyof Layout, { value: number }>;
type TranscodeFn = (len: number, count: number, agency: number) => number;

interface Transcoder extends Layout {
  readonly run: TranscodeFn;
  readonly bytes: Uint8Array;
}

/** This thread's instance, made on first use; null where Node has no WebAssembly (`--jitless`), not kept. */
const instance = onFirstUse<Exports, Transcoder>(TRANSCODE_WASM, (exports) => ({
  ...globalsOf(exports, LAYOUT),
  run: exports.transcode,
  // The module never grows its memory, so the view stays valid.
  bytes: new Uint8Array(exports.memory.buffer),
}));

/**
 * Transcodes `count` bets of `agency` from `src` into `out` at `o`. Returns the end offset
 * in `out`, or null when the batch must take the slow path (bad or unusual input). Runs the
 * WebAssembly transcoder, copying the batch in and its rows out; a batch larger than its
 * memory (never a BATCH frame's) goes through transcodeBatchJs.
 */
export function transcodeBatch(src: Buffer, count: number, agency: number, out: Buffer, o: number): number | null {
  const t = instance();
  if (t === null || src.length > t.SRC_CAP || maxRowsSize(src.length, count) > t.OUT_CAP)
    return transcodeBatchJs(src, count, agency, out, o);
  t.bytes.set(src, t.SRC);
  const length = t.run(src.length, count, agency);
  if (length < 0) return null;
  out.set(t.bytes.subarray(t.OUT, t.OUT + length), o);
  return o + length;
}

/** transcodeBatch in JavaScript: where there is no WebAssembly, and the module's reference in tests. */
export function transcodeBatchJs(src: Buffer, count: number, agency: number, out: Buffer, o: number): number | null {
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
    if (src[p] !== 10 || p + 11 + 2 > src.length || !isRealDateAt(src, p + 1)) return null;
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
