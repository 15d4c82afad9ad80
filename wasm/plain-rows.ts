/**
 * The client's plain-row path over a run of whole lines, in AssemblyScript, compiled to
 * WebAssembly by `npm run build:wasm` (tools/lib/wasm.ts) into client/plain-rows-wasm.ts,
 * which is checked in; client/wasm-rows.ts runs it. A client lives for a fraction of a
 * second, and V8 spent more CPU optimising the same loop in JavaScript than running it;
 * WebAssembly starts as machine code, with nothing to warm up.
 * Invariant: each line is taken exactly as client/fast-rows.ts's encodePlainRow takes it
 * (same checks, same bytes), and the run stops at the first line encodePlainRow would not
 * take: the caller reads that line by the JavaScript path, which also words the error.
 * test/fast-rows.test.ts checks it on random runs, and that the checked-in module is this
 * file's build. Numbers are 32-bit here: a 10-digit document is parsed in 64 bits.
 * Memory (fixed, 4 pages; nothing is allocated): the caller's bytes at SRC, the bets written
 * at OUT, each bet's end at ENDS, and the results at RES (exported: client/wasm-rows.ts reads
 * the layout from the module; tools/lib/wasm.ts puts the static data above RES + 16).
 */
import { NAME_DOUBT, at, digitsAt, isRealDateAt, scanName } from './bet-bytes';

// The layout, exported so that client/wasm-rows.ts reads it from the module (one source).
const SRC: i32 = 0;
export const SRC_CAP: i32 = 0x10000;
export const OUT: i32 = SRC + SRC_CAP;
const OUT_CAP: i32 = 0x20000;
export const ENDS: i32 = OUT + OUT_CAP;
export const ENDS_CAP: i32 = 0x1000;
export const RES: i32 = ENDS + 4 * ENDS_CAP;
/** The most a plain row's bet takes: agency, two 255-byte names, document, date, number. */
const MAX_PLAIN_BET: i32 = 4 + 2 * 256 + 11 + 11 + 2;
const MAX_NUMBER: i32 = 9999;

/** Why encodeRows stopped (RES + 12). */
const STOP_ROOM: i32 = 0;
export const STOP_END: i32 = 1;
const STOP_ROW: i32 = 2;

const COMMA: u32 = 0x2c;
const QUOTE: u32 = 0x22;
const CR: u32 = 0x0d;
const LF: u32 = 0x0a;

/** String.prototype.trim's ASCII whitespace, less LF and CR. */
@inline function isAsciiSpace(c: u32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0b || c == 0x0c;
}

/** U+00A0, or a three-byte character led by E1, E2, E3 or EF: maybe a space trim() removes. */
function mayBeWideSpace(i: i32): bool {
  const c = at(i);
  return (c == 0xc2 && at(i + 1) == 0xa0) || c == 0xe1 || c == 0xe2 || c == 0xe3 || c == 0xef;
}

/** fast-rows.ts's isPlainName. */
function isPlainName(a: i32, z: i32): bool {
  if (a >= z || scanName(a, z) == NAME_DOUBT) return false;
  if (at(a) >= 0x80 && mayBeWideSpace(a)) return false;
  if (at(z - 1) < 0x80) return true;
  let lead = z - 1;
  while (lead > a && (at(lead) & 0xc0) == 0x80) lead--;
  return !mayBeWideSpace(lead);
}

@inline function trimStart(a: i32, z: i32): i32 {
  while (a < z && isAsciiSpace(at(a))) a++;
  return a;
}

@inline function trimEnd(a: i32, z: i32): i32 {
  while (z > a && isAsciiSpace(at(z - 1))) z--;
  return z;
}

@inline function putStr8(a: i32, z: i32, o: i32): i32 {
  store<u8>(<usize>o, <u8>(z - a));
  memory.copy(<usize>(o + 1), <usize>a, <usize>(z - a));
  return o + 1 + z - a;
}

/** The row [s, e) cut at c0..c3: its bet at o and the new offset, or -1 (the JavaScript path takes it). */
function writeRow(s: i32, e: i32, c0: i32, c1: i32, c2: i32, c3: i32, agency: u32, o: i32): i32 {
  const nameA = trimStart(s, c0);
  const nameZ = trimEnd(nameA, c0);
  const lastA = trimStart(c0 + 1, c1);
  const lastZ = trimEnd(lastA, c1);
  const docA = trimStart(c1 + 1, c2);
  const docZ = trimEnd(docA, c2);
  const dateA = trimStart(c2 + 1, c3);
  const dateZ = trimEnd(dateA, c3);
  const numA = trimStart(c3 + 1, e);
  const numZ = trimEnd(numA, e);
  if (!isPlainName(nameA, nameZ) || !isPlainName(lastA, lastZ)) return -1;
  const docLen = docZ - docA;
  if (docLen < 1 || docLen > 10 || digitsAt(docA, docLen) < 0) return -1;
  if (dateZ - dateA != 10 || !isRealDateAt(dateA)) return -1;
  const numLen = numZ - numA;
  const number = numLen >= 1 && numLen <= 4 ? <i32>digitsAt(numA, numLen) : -1;
  if (number < 0 || number > MAX_NUMBER) return -1;
  store<u32>(<usize>o, bswap<u32>(agency));
  o = putStr8(nameA, nameZ, o + 4);
  o = putStr8(lastA, lastZ, o);
  o = putStr8(docA, docZ, o);
  o = putStr8(dateA, dateZ, o);
  store<u8>(<usize>o, <u8>(number >>> 8));
  store<u8>(<usize>(o + 1), <u8>number);
  return o + 2;
}

/**
 * The plain rows of the whole lines of [SRC + s, SRC + end), writing at most
 * `room` bytes of bets at OUT. Returns the bets written; RES holds where it stopped (an
 * offset from SRC), the bytes written, the lines consumed and why it stopped; each bet's end
 * goes to ENDS as `base` plus its end's offset from OUT (where the caller puts OUT's bytes).
 */
export function encodeRows(s: i32, end: i32, agency: u32, room: i32, maxLine: i32, base: i32): i32 {
  let lines: i32 = 0;
  let count: i32 = 0;
  let o = OUT;
  const last = OUT + (room < OUT_CAP ? room : OUT_CAP) - MAX_PLAIN_BET;
  let why = STOP_ROOM;
  while (o <= last && count < ENDS_CAP) {
    let commas = 0;
    let z = -1;
    let i = s;
    let c0 = 0;
    let c1 = 0;
    let c2 = 0;
    let c3 = 0;
    for (; i < end; i++) {
      const c = at(i);
      if (c == LF) {
        z = i;
        break;
      }
      if (c == COMMA) {
        if (commas == 0) c0 = i;
        else if (commas == 1) c1 = i;
        else if (commas == 2) c2 = i;
        else if (commas == 3) c3 = i;
        commas++;
      } else if (c == CR && i + 1 < end && at(i + 1) == LF) {
        z = i++;
        break;
      } else if (c == CR && i + 1 == end) {
        // Maybe a CRLF cut by the end of the bytes given: the caller's next window has its LF.
        i = end;
        break;
      } else if (c == QUOTE || c == CR) {
        break;
      }
    }
    if (z < 0) {
      why = i == end ? STOP_END : STOP_ROW;
      break;
    }
    if (i + 1 - s > maxLine) {
      why = STOP_ROW;
      break;
    }
    if (z > s) {
      const w = commas == 4 ? writeRow(s, z, c0, c1, c2, c3, agency, o) : -1;
      if (w < 0) {
        why = STOP_ROW;
        break;
      }
      o = w;
      store<i32>(<usize>(ENDS + (count << 2)), base + o - OUT);
      count++;
    }
    lines++;
    s = i + 1;
  }
  store<i32>(<usize>RES, s - SRC);
  store<i32>(<usize>(RES + 4), o - OUT);
  store<i32>(<usize>(RES + 8), lines);
  store<i32>(<usize>(RES + 12), why);
  return count;
}
