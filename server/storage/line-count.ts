/**
 * The draw scan's read buffer and its line counts (winners-scan.ts). The buffer lives in a
 * WebAssembly memory of its own, where wasm/line-count.ts counts line ends 16 bytes per step;
 * where Node has no WebAssembly (`--jitless`), a plain Buffer and one indexOf per line, which
 * give the same counts (test/winners-scan.test.ts compares the two on random bytes).
 */
import { wasmModule } from '../../shared/util/wasm.js';
import { LINE_COUNT_WASM } from './line-count-wasm.js';

const LF = 0x0a;
const CR = 0x0d;
const PAGE = 0x10000;

export interface LineCounts {
  /** Line ends (LF bytes). */
  lines: number;
  /** Lines that hold a row: anything but nothing or a lone CR before their LF (load_bets skips the others). */
  rows: number;
}

export interface LineCounter {
  /** Where the scan reads: its counts are over these bytes. */
  readonly buffer: Buffer;
  /** Counts in buffer[from, to); `from` is a line start. */
  count(from: number, to: number): LineCounts;
}

/** The module's exports (wasm/line-count.ts). */
interface Exports {
  countLines: (from: number, to: number) => number;
  empties: { value: number };
  DATA: { value: number };
}

/** A counter over a buffer of `size` bytes, for one scan (scans may run at once: each has its own memory). */
export function lineCounter(size: number): LineCounter {
  const wasm = wasmModule(LINE_COUNT_WASM);
  if (wasm === null) return jsCounter(Buffer.allocUnsafe(size));
  // The memory never grows, so the buffer's view of it stays valid.
  const memory = wasm.memory(Math.ceil((PAGE + size) / PAGE));
  const exports = wasm.instantiate<Exports>({ env: { memory } });
  const base = exports.DATA.value;
  const bytes = new Uint8Array(memory.buffer);
  // A line that starts at the buffer's first byte reads as one after a line end.
  bytes[base - 1] = LF;
  bytes[base - 2] = LF;
  return {
    buffer: Buffer.from(memory.buffer, base, size),
    count(from, to) {
      const lines = exports.countLines(base + from, base + to);
      return { lines, rows: lines - exports.empties.value };
    },
  };
}

function jsCounter(buffer: Buffer): LineCounter {
  return { buffer, count: (from, to) => countLinesJs(buffer, from, to) };
}

/** The plain loop: one indexOf per line. */
export function countLinesJs(b: Uint8Array, from: number, to: number): LineCounts {
  let lines = 0;
  let rows = 0;
  let start = from;
  for (let i = b.indexOf(LF, from); i >= 0 && i < to; i = b.indexOf(LF, i + 1)) {
    lines++;
    if ((b[i - 1] === CR ? i - 1 : i) > start) rows++;
    start = i + 1;
  }
  return { lines, rows };
}
