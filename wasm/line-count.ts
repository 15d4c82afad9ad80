/**
 * The draw's line count over the bets file (server/storage/line-count.ts runs it), in
 * AssemblyScript, compiled to WebAssembly with SIMD by `npm run build:wasm` (tools/lib/wasm.ts)
 * into server/storage/line-count-wasm.ts, which is checked in. One JavaScript indexOf call per
 * line cost the draw more than everything else it does; this compares 16 bytes per step.
 * Memory is the caller's (imported, never grown): its bytes sit at DATA and up, and the two
 * bytes below DATA hold LF, so that a line starting at DATA reads as one that follows a line end.
 * Invariant (checked by test/winners-scan.test.ts against a plain loop on random bytes):
 * countLines(from, to), `from` a line start, returns the LF bytes in [from, to) and leaves in
 * `empties` how many of the lines they end are empty (nothing, or a lone CR, before the LF).
 */
export const DATA: usize = 16;
export let empties: i32 = 0;

const LF: u8 = 0x0a;
const CR: u8 = 0x0d;

/** Lane mask of the LFs in the 16 bytes at p that end an empty line. */
@inline function emptyEnds(p: usize, lf: v128, cr: v128): i32 {
  const ends = i8x16.eq(v128.load(p), lf);
  const afterLf = i8x16.eq(v128.load(p - 1), lf);
  const afterCrLf = v128.and(i8x16.eq(v128.load(p - 1), cr), i8x16.eq(v128.load(p - 2), lf));
  return i8x16.bitmask(v128.and(ends, v128.or(afterLf, afterCrLf)));
}

export function countLines(from: usize, to: usize): i32 {
  const lf = i8x16.splat(LF);
  const cr = i8x16.splat(CR);
  let lines: i32 = 0;
  let empty: i32 = 0;
  let i = from;
  while (i + 16 <= to) {
    lines += popcnt<i32>(i8x16.bitmask(i8x16.eq(v128.load(i), lf)));
    empty += popcnt<i32>(emptyEnds(i, lf, cr));
    i += 16;
  }
  while (i < to) {
    if (load<u8>(i) == LF) {
      lines++;
      const before = load<u8>(i - 1);
      if (before == LF || (before == CR && load<u8>(i - 2) == LF)) empty++;
    }
    i++;
  }
  empties = empty;
  return lines;
}
