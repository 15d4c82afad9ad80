/**
 * The oracle of test/row-decoder.test.ts: the client's reader as it was before the fast path
 * (commit b27859f, client/bets-reader.ts), kept verbatim but for the options type it shares
 * with today's reader: csv-parse sees every byte, then parseAgencyRecord. The fast reader
 * must give the same bets, line numbers and messages.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parse, type CsvError } from 'csv-parse';
import type { ReadOptions } from '../../client/bets-reader.js';
import { parseAgencyRecord, type Bet } from '../../shared/domain/bet.js';

/**
 * Line bookkeeping without csv-parse's per-record `info` (which costs more than the parsing):
 * empty lines come through as one empty field and count one line; a record counts one line
 * plus the line breaks inside its quoted fields; a record csv-parse skips (skip_records_with_error)
 * resynchronises the count to the line where csv-parse gave up.
 */
class LineCounter {
  line = 0;
  records = 0;
  readonly #skipped: CsvError[] = [];
  readonly #report: (line: number, err: CsvError) => void;

  constructor(report: (line: number, err: CsvError) => void) {
    this.#report = report;
  }

  skip(err: CsvError): void {
    this.#skipped.push(err);
  }

  /** Skips that happened before the next record; csv-parse emits them ahead of the records it buffered. */
  catchUp(recordsBefore: number): void {
    while (this.#skipped.length > 0 && Number(this.#skipped[0]!.records ?? 0) <= recordsBefore) {
      const err = this.#skipped.shift()!;
      this.#report(this.line + 1, err);
      this.line = Math.max(this.line + 1, Number(err.lines ?? 0));
    }
  }

  /** Counts one record; returns its first line. */
  take(record: string[]): number {
    this.catchUp(this.records);
    this.records++;
    const first = this.line + 1;
    this.line = first;
    for (const field of record) {
      for (let i = field.indexOf('\n'); i >= 0; i = field.indexOf('\n', i + 1)) this.line++;
    }
    return first;
  }
}

/** The agency's bets in file order, in chunks of whatever csv-parse has ready. */
export async function* readWithCsvParseOnly(opts: ReadOptions): AsyncGenerator<Bet[]> {
  const { path, agency, onBadRow } = opts;
  // 64 KiB: a chunk of bets dies young. 256 KiB chunks (~6,000 bets) outlived scavenges while
  // their batches waited for acks and grew the old generation (peak RSS, 1M-row file: 97 ->
  // 75 MB; the bench's 5M-bet run: 101 -> 87 MB).
  const source = createReadStream(path, { highWaterMark: 1 << 16 });
  if (opts.onClose) source.once('close', opts.onClose);
  const parser = parse({
    bom: true,
    // Explicit: auto-detection fixes the first line's ending for the whole file, so a CRLF
    // file with one LF line merges two rows (and an LF file keeps a '\r' in the last field).
    record_delimiter: ['\r\n', '\n'],
    relax_column_count: true,
    skip_records_with_error: true,
  });
  const lines = new LineCounter((start, err) => {
    const end = Number(err.lines ?? start);
    const where = end > start ? `lines ${start}-${end} are one unparsable record (check the quotes on line ${start}): ` : '';
    onBadRow({ file: path, line: start, error: `${where}${err.message.replace(/^Invalid Record Length: /, '')}` });
  });
  parser.on('skip', (err: CsvError) => lines.skip(err));
  // pipeline forwards a missing file or a read error to the parser, and so to the reads below.
  const done = pipeline(source, parser, { signal: opts.signal });
  done.catch(() => {}); // the same error surfaces through the iteration below
  try {
    for await (const first of parser as AsyncIterable<string[]>) {
      const bets: Bet[] = [];
      // Whatever else is already buffered comes out synchronously: one await per chunk, not per row.
      for (let record: string[] | null = first; record !== null; record = parser.read() as string[] | null) {
        const line = lines.take(record);
        if (record.length === 1 && record[0] === '') continue; // an empty line
        const bet = parseAgencyRecord(agency, record);
        if (typeof bet === 'string') onBadRow({ file: path, line, error: bet });
        else bets.push(bet);
      }
      if (bets.length > 0) yield bets;
    }
    await done;
    lines.catchUp(Number.POSITIVE_INFINITY);
  } finally {
    source.destroy();
  }
}
