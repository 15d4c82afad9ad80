/**
 * The draw's scan of the bets file: what `load_bets` + `has_won` over every row finds (the
 * winners, agency by agency in file order, and how many bets were scanned), without turning
 * each row into a bet. A row as store_bets writes it (bets-file.ts) ends in its number, never
 * quoted nor zero-padded, then CRLF, and no field holds a line break; so only a row that ends
 * in `,<winning number>` can win, and rows are counted by their line ends (line-count.ts;
 * empty lines, which load_bets skips, are not rows). Each such row is parsed whole, as
 * load_bets parses it: a corrupt one stops the draw with CorruptRowError, like load_bets.
 * test/winners-scan.test.ts checks it against load_bets + has_won.
 */
import { open } from 'node:fs/promises';
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { CorruptRowError, toBet } from './bets-file.js';
import { lineCounter } from './line-count.js';
import type { Winners } from './winners-file.js';

const LF = 0x0a;
const CR = 0x0d;

export interface WinnersScan {
  winners: Winners;
  scanned: number;
}

/** The bytes of `,<number>` that end a winning row before its line end. */
function tailOf(number: number): Buffer {
  return Buffer.from(`,${number}`, 'latin1');
}

export interface ScanOptions {
  /** The winning number (default: the lottery's). */
  number?: number;
  /** Bytes per read, and the longest row allowed: 1 MiB (a stream of 64 KiB chunks cost several times as much CPU). */
  readBytes?: number;
  /** Where the scan stops (default: the end of the file): rows after it are not stored yet. */
  end?: number;
}

export async function scanWinners(path: string, opts: ScanOptions = {}): Promise<WinnersScan> {
  const tail = tailOf(opts.number ?? WINNING_NUMBER);
  const byAgency = new Map<number, string[]>();
  const counter = lineCounter(opts.readBytes ?? 1 << 20);
  const buf = counter.buffer;
  /** Lines before buf[0], and the rows among them. */
  let lines = 0;
  let rows = 0;
  /** Bytes of an unfinished line carried to buf[0, have). */
  let have = 0;
  const limit = opts.end ?? Infinity;
  /** Bytes of the file read so far. */
  let read = 0;
  const file = await open(path, 'r');
  try {
    for (;;) {
      const { bytesRead } = await file.read(buf, have, Math.min(buf.length - have, limit - read), null);
      if (bytesRead === 0) break;
      read += bytesRead;
      const b = buf.subarray(0, have + bytesRead);
      const whole = b.lastIndexOf(LF) + 1;
      if (whole === 0 && b.length === buf.length)
        throw new CorruptRowError(path, lines + 1, `no line end in ${buf.length} bytes: this is not a bets file as store_bets writes it`);
      // Line ends (and rows) counted in b up to `seen`.
      let seen = 0;
      let before = 0;
      let rowsBefore = 0;
      for (let t = b.indexOf(tail); t >= 0 && t < whole; t = b.indexOf(tail, t + 1)) {
        const after = t + tail.length;
        const end = b[after] === LF ? after : b[after] === CR && b[after + 1] === LF ? after : -1;
        if (end < 0) continue;
        const start = b.lastIndexOf(LF, t) + 1;
        const counted = counter.count(seen, start);
        before += counted.lines;
        rowsBefore += counted.rows;
        seen = start;
        const bet = toBet(path, lines + before + 1, b.toString('utf8', start, end));
        if (bet instanceof CorruptRowError) throw bet;
        const list = byAgency.get(bet.agency);
        if (list === undefined) byAgency.set(bet.agency, [bet.document]);
        else list.push(bet.document);
      }
      const rest = counter.count(seen, whole);
      lines += before + rest.lines;
      rows += rowsBefore + rest.rows;
      b.copyWithin(0, whole);
      have = b.length - whole;
    }
  } finally {
    await file.close();
  }
  if (have > 0) throw new CorruptRowError(path, lines + 1, 'last row is incomplete (no line end): the file was cut mid-write');
  return { winners: [...byAgency], scanned: rows };
}
