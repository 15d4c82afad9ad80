/**
 * The byte-level bet checks that both row modules need (plain-rows.ts, transcode.ts), in
 * AssemblyScript: twins of shared/domain/bet-bytes.ts. Not a module of its own:
 * tools/lib/wasm.ts compiles it into each module that imports it.
 */

@inline export function at(i: i32): u32 {
  return <u32>load<u8>(<usize>i);
}

/** The value of n ASCII digits at p, or -1 when one is not a digit. 64-bit: a document has up to 10 digits. */
export function digitsAt(p: i32, n: i32): i64 {
  let v: i64 = 0;
  for (let i = 0; i < n; i++) {
    const c = at(p + i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + <i64>(c - 0x30);
  }
  return v;
}

function daysInMonth(y: i32, m: i32): i32 {
  if (m == 2) return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28;
  return m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31;
}

/** bet-bytes.ts's isRealDateAt: the 10 bytes at p are `YYYY-MM-DD` naming a real day. */
export function isRealDateAt(p: i32): bool {
  if (at(p + 4) != 0x2d || at(p + 7) != 0x2d) return false;
  const y = <i32>digitsAt(p, 4);
  const m = <i32>digitsAt(p + 5, 2);
  const d = <i32>digitsAt(p + 8, 2);
  return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

/** bet-bytes.ts's utf8Length: the well-formed UTF-8 sequence at i (before end), or 0. */
export function utf8Length(i: i32, end: i32): i32 {
  const c = at(i);
  const n: i32 = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || i + n > end) return 0;
  for (let k = 1; k < n; k++) if ((at(i + k) & 0xc0) != 0x80) return 0;
  const c1 = at(i + 1);
  // Overlong forms, surrogates and code points past U+10FFFF.
  if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f)) return 0;
  return n;
}

/** bet.ts's MAX_NAME_BYTES. */
const MAX_NAME_BYTES: i32 = 255;
/** scanName's answer for a name that needs the string path. */
export const NAME_DOUBT: i32 = -1;
/** scanName's flag for a name holding a comma or a quote (quoted in a CSV row). */
export const NAME_HAS_SPECIAL: i32 = 1;

/**
 * bet-bytes.ts's scanName over the UTF-8 name in [p, end): NAME_DOUBT when it is empty, over
 * 255 bytes, holds a control character (C0, DEL, C1) or invalid UTF-8, or has no visible ASCII
 * character; else 0, or NAME_HAS_SPECIAL when it holds a comma or a quote.
 */
@inline export function scanName(p: i32, end: i32): i32 {
  if (end <= p || end - p > MAX_NAME_BYTES) return NAME_DOUBT;
  let visible = false;
  let special: i32 = 0;
  for (let i = p; i < end; ) {
    const c = at(i);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return NAME_DOUBT;
      if (c != 0x20) visible = true;
      if (c == 0x2c || c == 0x22) special = NAME_HAS_SPECIAL;
      i++;
      continue;
    }
    const n = utf8Length(i, end);
    // C1 controls are U+0080-U+009F: 0xC2 0x80 to 0xC2 0x9F.
    if (n == 0 || (c == 0xc2 && at(i + 1) < 0xa0)) return NAME_DOUBT;
    i += n;
  }
  return visible ? special : NAME_DOUBT;
}
