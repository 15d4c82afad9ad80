/**
 * Byte-level twins of bet.ts's checks, for the paths that never build a Bet: the client's
 * plain CSV rows (client/fast-rows.ts) and the server's transcoder (server/pool/transcode.ts).
 * Invariant: each says "valid" only where bet.ts would; on any doubt it says no, and the
 * caller takes the string path, which also words the error.
 */
import { MAX_NAME_BYTES, daysInMonth } from './bet.js';

const ZERO = 0x30;
const NINE = 0x39;
const DASH = 0x2d;
const COMMA = 0x2c;
const QUOTE = 0x22;

/** The value of `n` ASCII digits at `p`, or -1 when one of them is not a digit. */
export function digitsAt(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = b[p + i]!;
    if (c < ZERO || c > NINE) return -1;
    v = v * 10 + (c - ZERO);
  }
  return v;
}

/** True when the 10 bytes at `p` are `YYYY-MM-DD` naming a real day (bet.ts isRealDate). */
export function isRealDateAt(b: Uint8Array, p: number): boolean {
  if (b[p + 4] !== DASH || b[p + 7] !== DASH) return false;
  const y = digitsAt(b, p, 4);
  const m = digitsAt(b, p + 5, 2);
  const d = digitsAt(b, p + 8, 2);
  return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

/** Length of the well-formed UTF-8 sequence starting at `i` (before `end`), or 0. */
function utf8Length(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > end) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const c1 = b[i + 1]!;
  // Overlong forms, surrogates and code points past U+10FFFF.
  if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0;
  return n;
}

/** scanName's answer for a name that needs the string path. */
export const NAME_DOUBT = -1;
/** scanName's flag for a name holding a comma or a quote (quoted in a CSV row). */
export const NAME_HAS_SPECIAL = 1;

/**
 * Checks the UTF-8 name in b[p, end) as bet.ts's name rule would, without trimming it:
 * NAME_DOUBT when it is empty, over 255 bytes, holds a control character (C0, DEL, C1
 * U+0080-U+009F) or invalid UTF-8, or has no visible ASCII character (only trim() knows
 * whether it is blank); else 0, or NAME_HAS_SPECIAL when it holds a comma or a quote.
 */
export function scanName(b: Uint8Array, p: number, end: number): number {
  if (end <= p || end - p > MAX_NAME_BYTES) return NAME_DOUBT;
  let visible = false;
  let special = 0;
  for (let i = p; i < end; ) {
    const c = b[i]!;
    if (c < 0x80) {
      if (c < 0x20 || c === 0x7f) return NAME_DOUBT;
      if (c !== 0x20) visible = true;
      if (c === COMMA || c === QUOTE) special = NAME_HAS_SPECIAL;
      i++;
      continue;
    }
    const n = utf8Length(b, i, end);
    // C1 controls are U+0080-U+009F: 0xC2 0x80 to 0xC2 0x9F.
    if (n === 0 || (c === 0xc2 && b[i + 1]! < 0xa0)) return NAME_DOUBT;
    i += n;
  }
  return visible ? special : NAME_DOUBT;
}
