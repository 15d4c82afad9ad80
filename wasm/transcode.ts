/**
 * The pool worker's transcoder (server/pool/transcode.ts runs it), in AssemblyScript, compiled
 * to WebAssembly by `npm run build:wasm` (tools/lib/wasm.ts) into
 * server/pool/transcode-wasm.ts, which is checked in. A worker's isolate starts cold: at the
 * course's size V8 spent more CPU interpreting and optimising the JavaScript loop than running
 * it, while WebAssembly starts as machine code.
 * Invariant: it writes exactly what transcodeBatchJs writes, and declines (-1) exactly the
 * batches it declines; test/transcode.test.ts checks both on random and mutated batches, and
 * that the checked-in module is this file's build.
 * Memory (fixed, 5 pages; nothing is allocated): one batch's bytes at SRC, its rows at OUT,
 * the agency's prefix at PREFIX.
 */
import { NAME_DOUBT, NAME_HAS_SPECIAL, at, isRealDateAt, scanName } from './bet-bytes';

export const SRC: i32 = 0;
export const SRC_CAP: i32 = 0x10000;
export const OUT: i32 = SRC + SRC_CAP;
/** Room for maxRowsSize(SRC_CAP, SRC_CAP / MIN_ENCODED_BET) bytes: the caller checks it. */
export const OUT_CAP: i32 = 0x38000;
/**
 * The agency's digits and comma, copied to each row 12 bytes at a time. Invariant: every store
 * lies below OUT + maxRowsSize + 12 (rows take at most 26 of its 32 bytes a bet), so the gap
 * of 16 bytes keeps the prefix intact.
 */
const PREFIX: i32 = OUT + OUT_CAP + 16;

const MAX_NUMBER: u32 = 9999;
const COMMA: u32 = 0x2c;
const QUOTE: u32 = 0x22;
const ZERO: u32 = 0x30;
const NINE: u32 = 0x39;
const DATE_LEN: i32 = 10;
const MAX_DOCUMENT: i32 = 10;

@inline function put(o: i32, c: u32): void {
  store<u8>(<usize>o, <u8>c);
}

/**
 * transcode.ts's copyName: copies the name at [p, p + len) to o, quoted when it holds a comma
 * or a quote; the new output position, or -1 when the name needs the slow path (scanName).
 */
function copyName(p: i32, len: i32, o: i32): i32 {
  const end = p + len;
  const scan = scanName(p, end);
  if (scan == NAME_DOUBT) return -1;
  if (scan != NAME_HAS_SPECIAL) {
    memory.copy(<usize>o, <usize>p, <usize>len);
    return o + len;
  }
  put(o++, QUOTE);
  for (let i = p; i < end; i++) {
    const c = at(i);
    put(o++, c);
    if (c == QUOTE) put(o++, QUOTE);
  }
  put(o++, QUOTE);
  return o;
}

/** Writes the agency's decimal digits and a comma at PREFIX; returns their length. */
function setPrefix(agency: u32): i32 {
  let digits: i32 = 1;
  for (let v = agency; v >= 10; v /= 10) digits++;
  let n = agency;
  for (let k = digits - 1; k >= 0; k--) {
    put(PREFIX + k, ZERO + (n % 10));
    n /= 10;
  }
  put(PREFIX + digits, COMMA);
  return digits + 1;
}

/** 0..9999 in decimal without leading zeros (multiply and shift: exact below 10,000). */
function writeNumber(o: i32, n: u32): i32 {
  if (n >= 1000) put(o++, ZERO + ((n * 8389) >> 23));
  if (n >= 100) put(o++, ZERO + (((n * 5243) >> 19) % 10));
  if (n >= 10) put(o++, ZERO + (((n * 52429) >> 19) % 10));
  put(o++, ZERO + (n - ((n * 52429) >> 19) * 10));
  return o;
}

/**
 * transcode.ts's transcodeBatchJs over the `len` bytes at SRC: `count` bets of `agency` to
 * CSV rows at OUT. Returns the rows' length, or -1 when the batch must take the slow path.
 */
export function transcode(len: i32, count: i32, agency: u32): i32 {
  const end = SRC + len;
  let p = SRC;
  let o = OUT;
  const prefix = setPrefix(agency);
  const prefixHead = load<u64>(<usize>PREFIX);
  const prefixTail = load<u32>(<usize>(PREFIX + 8));
  for (let i = 0; i < count; i++) {
    if (p + 4 > end || bswap<u32>(load<u32>(<usize>p)) != agency) return -1;
    p += 4;
    // Up to 12 bytes: the ones past the prefix are overwritten next (OUT_CAP leaves room).
    store<u64>(<usize>o, prefixHead);
    store<u32>(<usize>(o + 8), prefixTail);
    o += prefix;
    for (let f = 0; f < 2; f++) {
      if (p >= end) return -1;
      const nameLen = <i32>at(p);
      if (p + 1 + nameLen > end) return -1;
      o = copyName(p + 1, nameLen, o);
      if (o < 0) return -1;
      put(o++, COMMA);
      p += 1 + nameLen;
    }
    if (p >= end) return -1;
    const docLen = <i32>at(p);
    if (docLen < 1 || docLen > MAX_DOCUMENT || p + 1 + docLen > end) return -1;
    for (let k = p + 1; k <= p + docLen; k++) {
      const c = at(k);
      if (c < ZERO || c > NINE) return -1;
      put(o++, c);
    }
    put(o++, COMMA);
    p += 1 + docLen;
    if (p + 1 + DATE_LEN + 2 > end || at(p) != <u32>DATE_LEN || !isRealDateAt(p + 1)) return -1;
    store<u64>(<usize>o, load<u64>(<usize>(p + 1)));
    store<u16>(<usize>(o + 8), load<u16>(<usize>(p + 9)));
    o += DATE_LEN;
    put(o++, COMMA);
    p += 1 + DATE_LEN;
    const number = (at(p) << 8) | at(p + 1);
    if (number > MAX_NUMBER) return -1;
    o = writeNumber(o, number);
    put(o++, 0x0d);
    put(o++, 0x0a);
    p += 2;
  }
  return p == end ? o - OUT : -1;
}
