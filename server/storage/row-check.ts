/**
 * Recovery's check of the bets file against the journal: the rows between one batch record's
 * end and the next must be exactly the rows that record says it stored, whole (CRLF-ended).
 * Row fields never hold a line break (betProblem refuses them), so counting '\n' counts rows.
 * One pass over the file in 1 MiB reads.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { BatchRecord } from './journal.js';

const CHUNK = 1 << 20;
const LF = 0x0a;

/** null when every recorded batch matches its rows, else what does not. */
export function checkRows(path: string, batches: readonly BatchRecord[]): string | null {
  if (batches.length === 0) return null;
  const fd = openSync(path, 'r');
  try {
    return scan(fd, batches);
  } finally {
    closeSync(fd);
  }
}

function scan(fd: number, batches: readonly BatchRecord[]): string | null {
  const buf = Buffer.allocUnsafe(CHUNK);
  let chunkStart = 0;
  let chunkEnd = 0;
  let pos = 0;
  for (const b of batches) {
    if (b.stored === 0) continue;
    const start = pos;
    let rows = 0;
    while (pos < b.end) {
      if (pos >= chunkEnd) {
        const n = readSync(fd, buf, 0, CHUNK, pos);
        if (n === 0) return `it ends at byte ${pos}, before the ${b.end} the journal records`;
        chunkStart = pos;
        chunkEnd = pos + n;
      }
      const stop = Math.min(b.end, chunkEnd);
      const view = buf.subarray(0, stop - chunkStart);
      for (let k = view.indexOf(LF, pos - chunkStart); k >= 0; k = view.indexOf(LF, k + 1)) rows++;
      pos = stop;
    }
    if (rows !== b.stored || buf[b.end - 1 - chunkStart] !== LF) {
      return `bytes ${start}..${b.end} should hold the ${b.stored} whole rows of agency ${b.agency}'s batch from bet ${b.first}, and hold ${rows} line ends${buf[b.end - 1 - chunkStart] === LF ? '' : ', the last row cut'}`;
    }
  }
  return null;
}
