/**
 * Lines on their way to csv-parse: whole records, the last one perhaps still open inside a
 * quoted field. A run starts at a record boundary, so that one csv-parse over it reads what
 * the whole-file parse would; consecutive rows that need csv-parse share one run (one parser).
 */
import { csvLinesOf, lineEndsQuoted, scanLine } from './csv-records.js';

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;

/** Whole records for csv-parse, and csv-parse's line count at their start and over them. */
export interface Run {
  bytes: Buffer;
  csvLine: number;
  csvLines: number;
}

/** What is left of a record still open past the cap (see QuotedRun.overflow). */
export interface Overflow {
  before: Run | null;
  lines: number;
  csvLines: number;
}

/** True when b[s, e) has a quote, or a CR that is not the one of its CRLF ending. */
export function needsCsvParse(b: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === QUOTE || (c === CR && !(i + 2 === e && b[i + 1] === LF))) return true;
  }
  return false;
}

export class QuotedRun {
  readonly #max: number;
  #lines: Buffer[] = [];
  #csvCounts: number[] = [];
  #bytes = 0;
  #csvLine = 1;
  #open = false;
  /** Index in #lines of the open record's first line, and the bytes of the record so far. */
  #recordStart = 0;
  #recordBytes = 0;

  /** `max`: the most bytes a record may take (line ends included). */
  constructor(max: number) {
    this.#max = max;
  }

  /** The last line ended inside a quoted field: the next line belongs to the run. */
  get open(): boolean {
    return this.#open;
  }
  get pending(): boolean {
    return this.#lines.length > 0;
  }
  /** The open record is longer than `max`: see overflow(). */
  get tooLong(): boolean {
    return this.#open && this.#recordBytes > this.#max;
  }

  /** Whether a run whose records are all whole takes this line too: one that needs csv-parse, while the run stays under `max`. */
  takes(b: Buffer, s: number, e: number): boolean {
    return this.#bytes + (e - s) <= this.#max && needsCsvParse(b, s, e);
  }

  /** Appends the line b[s, e) (copied); `csvLine` is csv-parse's count at its start, used when it starts the run. */
  add(b: Buffer, s: number, e: number, csvLine: number): void {
    if (this.#lines.length === 0) this.#csvLine = csvLine;
    const scan = scanLine(b, s, e, this.#open);
    const open = lineEndsQuoted(scan);
    if (open && !this.#open) {
      this.#recordStart = this.#lines.length;
      this.#recordBytes = 0;
    }
    this.#lines.push(Buffer.from(b.subarray(s, e)));
    this.#csvCounts.push(csvLinesOf(scan));
    this.#bytes += e - s;
    this.#recordBytes += e - s;
    this.#open = open;
  }

  /** The run's records, once they are whole (at the end of the file: all of it, for csv-parse to report an open quote); empties the run. */
  close(end: boolean): Run | null {
    if (this.#lines.length === 0 || (this.#open && !end)) return null;
    const run = this.#cut(this.#lines.length);
    this.#reset();
    return run;
  }

  /** Gives up on the open record: the whole records before it, and how many lines (and csv-parse lines) it took; empties the run. */
  overflow(): Overflow {
    const start = this.#recordStart;
    const before = start > 0 ? this.#cut(start) : null;
    let csvLines = 0;
    for (let i = start; i < this.#csvCounts.length; i++) csvLines += this.#csvCounts[i]!;
    const lines = this.#lines.length - start;
    this.#reset();
    return { before, lines, csvLines };
  }

  #cut(n: number): Run {
    let csvLines = 0;
    for (let i = 0; i < n; i++) csvLines += this.#csvCounts[i]!;
    const bytes = n === 1 ? this.#lines[0]! : Buffer.concat(this.#lines.slice(0, n));
    return { bytes, csvLine: this.#csvLine, csvLines };
  }

  #reset(): void {
    this.#lines = [];
    this.#csvCounts = [];
    this.#bytes = 0;
    this.#open = false;
    this.#recordStart = 0;
    this.#recordBytes = 0;
  }
}
