/**
 * The client's fast path over many rows at once, run as WebAssembly (wasm/plain-rows.ts):
 * whole plain lines straight to bets in wire form, each row taken exactly as encodePlainRow
 * (fast-rows.ts) takes it. A client lives for a fraction of a second; V8 would spend tens of
 * milliseconds optimising a JavaScript row loop, while this module compiles in well under one
 * and runs as machine code from its first row. Nothing here loops per row, so that no
 * JavaScript on this path gets hot enough to be optimised.
 */
import { globalsOf, onFirstUse } from '../shared/util/wasm.js';
import { PLAIN_ROWS_WASM } from './plain-rows-wasm.js';

/**
 * The first window copied in at each call; it doubles up to the module's window (SRC_CAP)
 * while the rows go on. A run that stops early (a declined row, which the caller then takes,
 * and calls again after it) so copies a few KiB, not 64, per call.
 */
const FIRST_WINDOW = 0x1000;

/** The bets' ends as a decoder collects them: ends[0, count), growing as needed. */
export interface BetEnds {
  ends: Int32Array;
  count: number;
}

/** Where encodeRows stopped: the first line it left to the caller, the output offset, lines consumed. */
export interface PlainRows {
  pos: number;
  out: number;
  lines: number;
}

type EncodeFn = (s: number, end: number, agency: number, room: number, maxLine: number, base: number) => number;

/** The module's memory layout (byte offsets and sizes), as wasm/plain-rows.ts exports it. */
const LAYOUT = ['SRC_CAP', 'OUT', 'ENDS', 'ENDS_CAP', 'RES', 'STOP_END'] as const;
type Layout = Record<(typeof LAYOUT)[number], number>;

/** The module's exports. */
type Exports = { memory: { buffer: ArrayBuffer }; encodeRows: EncodeFn } & Record<keyof Layout, { value: number }>;

interface Encoder extends Layout {
  readonly encode: EncodeFn;
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
}

/**
 * The module's instance, made on first use; null where there is no WebAssembly (Node's
 * start-up snapshot builder, tools/bundle.ts). That answer is never kept: a program
 * deserialised from the snapshot makes its instance on its first run.
 */
const instance = onFirstUse<Exports, Encoder>(PLAIN_ROWS_WASM, (exports) => {
  // The module never grows its memory, so these views stay valid.
  const { buffer } = exports.memory;
  return { ...globalsOf(exports, LAYOUT), encode: exports.encodeRows, bytes: new Uint8Array(buffer), words: new Int32Array(buffer) };
});

/**
 * Takes whole lines of src[s, end) and writes their bets at out[o...], each bet's end into
 * `ends`; skips empty lines; stops at the first line it cannot take — no LF before `end`,
 * longer than `maxLine` bytes with its LF, a quote or a bare CR, not 5 fields, not a valid
 * bet — or when `out` has less than MAX_PLAIN_BET bytes of room. `r` says where it stopped.
 * `maxLine` is at most 64 KiB (a window).
 */
export function encodeRows(
  src: Buffer,
  s: number,
  end: number,
  agency: number,
  out: Buffer,
  o: number,
  ends: BetEnds,
  maxLine: number,
  r: PlainRows,
): void {
  const module = instance();
  if (module === null) {
    // Declines the first line: the caller takes it by the JavaScript path.
    r.pos = s;
    r.out = o;
    r.lines = 0;
    return;
  }
  const { encode, bytes, words, SRC_CAP, OUT, ENDS, ENDS_CAP, RES, STOP_END } = module;
  if (maxLine > SRC_CAP) throw new RangeError(`maxLine ${maxLine} is over the ${SRC_CAP}-byte window`);
  const res = RES >> 2;
  const ends0 = ENDS >> 2;
  let lines = 0;
  let window = FIRST_WINDOW;
  for (;;) {
    const cut = end - s > window;
    const n = cut ? window : end - s;
    bytes.set(src.subarray(s, s + n), 0);
    if (ends.ends.length - ends.count < ENDS_CAP) grow(ends, ENDS_CAP);
    const count = encode(0, n, agency, out.length - o, maxLine, o);
    const pos = words[res]!;
    const written = words[res + 1]!;
    lines += words[res + 2]!;
    out.set(bytes.subarray(OUT, OUT + written), o);
    ends.ends.set(words.subarray(ends0, ends0 + count), ends.count);
    ends.count += count;
    o += written;
    s += pos;
    // The window ended inside a line: go on from that line with a larger window, unless the
    // line is over a whole window (then it is over maxLine too, and the caller's to report).
    if (words[res + 3] !== STOP_END || !cut) break;
    if (window < SRC_CAP) window *= 2;
    else if (pos === 0) break;
  }
  r.pos = s;
  r.out = o;
  r.lines = lines;
}

/** Appends one bet's end (a bet the JavaScript path wrote). */
export function addEnd(ends: BetEnds, end: number): void {
  if (ends.count === ends.ends.length) grow(ends, 1);
  ends.ends[ends.count++] = end;
}

/** Makes room for `n` more ends. */
function grow(ends: BetEnds, n: number): void {
  const bigger = new Int32Array(Math.max(2 * ends.ends.length, ends.count + n));
  bigger.set(ends.ends.subarray(0, ends.count));
  ends.ends = bigger;
}
