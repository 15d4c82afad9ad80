/**
 * Streams an agency CSV (`nombre,apellido,documento,nacimiento,numero`, no header) as bets.
 * Memory stays flat: csv-parse pulls from the file as we consume. A bad row never takes good
 * rows with it: csv-parse skips records it cannot parse (skip_records_with_error) and we
 * check the rest ourselves; either way `onBadRow` hears the file, line and reason.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parse, type CsvError } from 'csv-parse';
import { parseAgencyRecord, type Bet } from '../shared/domain/bet.js';

export interface BadRow {
  file: string;
  line: number;
  error: string;
}

interface ParsedRecord {
  record: string[];
  info: { lines: number; records: number; empty_lines: number };
}

export interface ReadOptions {
  path: string;
  agency: number;
  onBadRow: (bad: BadRow) => void;
  signal?: AbortSignal;
  /** Called once the file is closed, after the last row or on abort/error. */
  onClose?: () => void;
}

export async function* readAgencyBets(opts: ReadOptions): AsyncGenerator<Bet> {
  const { path, agency, onBadRow } = opts;
  const source = createReadStream(path);
  if (opts.onClose) source.once('close', opts.onClose);
  const parser = parse({
    bom: true,
    info: true,
    // Explicit: auto-detection fixes the first line's ending for the whole file, so a CRLF
    // file with one LF line merges two rows (and an LF file keeps a '\r' in the last field).
    record_delimiter: ['\r\n', '\n'],
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
  });
  // csv-parse reports a record it cannot parse when it gives up on it (an unclosed quote:
  // at the end of the file), so its line is where the record ENDS. Skips are held until
  // the records before them are consumed; the bad record starts after the last of those.
  const skipped: CsvError[] = [];
  parser.on('skip', (err: CsvError) => skipped.push(err));
  let lastLine = 0;
  let lastEmpty = 0;
  const reportSkips = (recordsBefore: number): void => {
    while (skipped.length > 0 && Number(skipped[0]!.records ?? 0) <= recordsBefore) {
      const err = skipped.shift()!;
      const start = lastLine + 1 + Math.max(0, Number(err.empty_lines ?? 0) - lastEmpty);
      const end = Number(err.lines ?? start);
      const where = end > start ? `lines ${start}-${end} are one unparsable record (check the quotes on line ${start}): ` : '';
      onBadRow({ file: path, line: start, error: `${where}${err.message.replace(/^Invalid Record Length: /, '')}` });
    }
  };
  // pipeline forwards a missing file or a read error to the parser, and so to this loop.
  const done = pipeline(source, parser, { signal: opts.signal });
  done.catch(() => {}); // the same error surfaces through the iteration below
  try {
    for await (const { record, info } of parser as AsyncIterable<ParsedRecord>) {
      reportSkips(info.records - 1);
      const bet = parseAgencyRecord(agency, record);
      if (typeof bet === 'string') onBadRow({ file: path, line: info.lines, error: bet });
      else yield bet;
      lastLine = info.lines;
      lastEmpty = info.empty_lines;
    }
    await done;
    reportSkips(Number.POSITIVE_INFINITY);
  } finally {
    source.destroy();
  }
}
