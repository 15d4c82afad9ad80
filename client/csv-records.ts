/**
 * The rows the fast path does not read go to csv-parse, the parser of record, one run of
 * whole records at a time. To cut the file into such runs without parsing it twice,
 * `scanLine` follows csv-parse 6's quote state line by line; `parseRecords` then hands a run
 * to a fresh parser that starts at the line count the whole-file parse would have there, so
 * its records, skips and the line numbers inside its messages are the whole-file parse's.
 */
import { type CsvError, type Options, Parser } from 'csv-parse';

const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

/**
 * The agency file's csv-parse options. Explicit record delimiters: auto-detection fixes the
 * first line's ending for the whole file, so a CRLF file with one LF line merges two rows
 * (and an LF file keeps a '\r' in the last field). A record csv-parse cannot parse is
 * skipped (and reported), never the end of the file.
 */
export const CSV_OPTIONS: Options = {
  record_delimiter: ['\r\n', '\n'],
  relax_column_count: true,
  skip_records_with_error: true,
};

/** scanLine's answer: whether the line ends inside a quoted field, in bit 0; csv-parse's line count for it above. */
export function lineEndsQuoted(scan: number): boolean {
  return (scan & 1) === 1;
}
export function csvLinesOf(scan: number): number {
  return scan >>> 1;
}

/**
 * Follows csv-parse over the line b[s, e) (its LF included, unless it is the file's last),
 * starting inside a quoted field or not (then at the start of a record). Our options make
 * csv-parse behave so: outside quotes a '"' opens a field only as its first byte (anywhere
 * else it is an error and an ordinary byte); inside, '""' is one quote, and '"' closes the
 * field only before ',', LF, CRLF, a NUL byte or the end of the data (before anything else
 * it is an error and the field stays open). csv-parse counts a line for every CR and LF, a
 * CRLF outside quotes (a record delimiter) once.
 */
export function scanLine(b: Buffer, s: number, e: number, quoted: boolean): number {
  let fieldEmpty = true;
  let lines = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (quoted) {
      if (c === QUOTE) {
        const next = i + 1 < e ? b[i + 1]! : -1;
        if (next === QUOTE) i++;
        else if (next <= 0 || next === COMMA || next === LF || (next === CR && i + 2 < e && b[i + 2] === LF)) quoted = false;
      } else if (c === CR || c === LF) {
        lines++;
      }
    } else if (c === QUOTE) {
      if (fieldEmpty) quoted = true;
    } else if (c === LF || c === COMMA) {
      if (c === LF) lines++;
      fieldEmpty = true;
    } else if (c === CR) {
      lines++;
      if (i + 1 < e && b[i + 1] === LF) {
        i++;
        fieldEmpty = true;
      } else {
        fieldEmpty = false;
      }
    } else {
      fieldEmpty = false;
    }
  }
  return (lines << 1) | (quoted ? 1 : 0);
}

export interface RecordEvents {
  record(fields: string[]): void;
  skip(err: CsvError): void;
}

/**
 * Parses `bytes`, whole records that start at csv-parse line `csvLine` of the file, and
 * calls `events` in file order. Never at the file's start: the BOM is the caller's.
 */
export function parseRecords(bytes: Buffer, csvLine: number, events: RecordEvents): void {
  const parser = new Parser({
    ...CSV_OPTIONS,
    bom: false,
    on_record: (record: string[]) => {
      events.record(record);
      return null; // nothing for the stream side, which is never read
    },
    on_skip: (err: CsvError | undefined) => {
      if (err !== undefined) events.skip(err);
      return undefined;
    },
  });
  // Public and mutable: the count that csv-parse puts into its messages and `err.lines`.
  (parser.info as { lines: number }).lines = csvLine;
  const rethrow = (err?: Error | null): void => {
    if (err) throw err;
  };
  // Called directly, both run synchronously; records and skips come through the callbacks.
  parser._transform(bytes, 'utf8', rethrow); // the encoding argument is unused
  parser._flush(rethrow);
}
