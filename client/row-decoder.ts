/**
 * An agency CSV file (`nombre,apellido,documento,nacimiento,numero`, no header), pushed in
 * chunks of bytes, decoded into bets in wire form (EncodedBets) and bad-row reports.
 * Plain rows take the fast path (fast-rows.ts); a row with a quote or a bare CR, and every
 * line of a quoted field that spans lines, goes to csv-parse (csv-records.ts), which stays
 * the parser of record: the records, line numbers and messages are those of one csv-parse
 * over the whole file (test/row-decoder.test.ts checks it on random files). Beyond that
 * parse, a record is at most MAX_RECORD_BYTES, so memory stays bounded: a longer line, or a
 * quote still open that far on, is one bad row, and reading goes on at the next line.
 */
import { StringDecoder } from 'node:string_decoder';
import type { CsvError } from 'csv-parse';
import { parseAgencyRecord } from '../shared/domain/bet.js';
import { type EncodedBets, MAX_ENCODED_BET, writeBet } from '../shared/protocol/bet-codec.js';
import { parseRecords } from './csv-records.js';
import { RowKind, encodePlainRow } from './fast-rows.js';
import { QuotedRun, type Run } from './quoted-run.js';
import { type BetEnds, type PlainRows, addEnd, encodeRows } from './wasm-rows.js';

/** The most bytes one record (its line ends included) may take. */
export const MAX_RECORD_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

export type BadRowReport = (line: number, error: string) => void;

export class AgencyRowDecoder {
  readonly #agency: number;
  readonly #bad: BadRowReport;
  #out = Buffer.allocUnsafe(1 << 17);
  #pos = 0;
  readonly #ends: BetEnds = { ends: new Int32Array(4096), count: 0 };
  #taken = false;
  /** The reader's line count: the line of the last record taken (a record's first line plus the LFs inside it). */
  #line = 0;
  /** csv-parse's `info.lines` where the next record starts. */
  #csvLine = 1;
  /** The file's first bytes until the BOM is known; null after. */
  #head: Buffer | null = Buffer.alloc(0);
  #utf16: StringDecoder | null = null;
  #carry: Buffer | null = null;
  /** Inside a line longer than MAX_RECORD_BYTES: its bytes are dropped up to its LF. */
  #dropping = false;
  readonly #run = new QuotedRun(MAX_RECORD_BYTES);
  readonly #plain: PlainRows = { pos: 0, out: 0, lines: 0 };

  constructor(agency: number, bad: BadRowReport) {
    this.#agency = agency;
    this.#bad = bad;
  }

  /** The bets decoded since the last take(); valid until the next push() or end(). */
  take(): EncodedBets {
    this.#taken = true;
    return { bytes: this.#out, ends: this.#ends.ends, count: this.#ends.count };
  }

  /** The next bytes of the file; the decoder keeps none of `chunk` once this returns (the caller may reuse it). */
  push(chunk: Buffer): void {
    this.#reset();
    const data = this.#decoded(chunk, false);
    if (data !== null) this.#split(data);
  }

  /** The end of the file: its last line (with no LF) and whatever csv-parse still holds. */
  end(): void {
    this.#reset();
    const data = this.#decoded(Buffer.alloc(0), true);
    if (data !== null) this.#split(data);
    const last = this.#carry;
    this.#carry = null;
    if (last !== null && last.length > 0 && !this.#dropping) this.#lineIn(last, 0, last.length);
    this.#dropping = false;
    this.#flushRun(true);
  }

  #reset(): void {
    if (!this.#taken) return;
    this.#taken = false;
    this.#pos = 0;
    this.#ends.count = 0;
  }

  /**
   * csv-parse's BOM handling: once 3 bytes are in (or the file ended), a UTF-8 BOM is dropped
   * and a UTF-16LE one switches the file to UTF-16LE, here by turning it into UTF-8.
   */
  #decoded(chunk: Buffer, end: boolean): Buffer | null {
    if (this.#head !== null) {
      const head = this.#head.length === 0 ? chunk : Buffer.concat([this.#head, chunk]);
      if (head.length < 3 && !end) {
        // A copy: the caller may reuse the chunk's bytes once push() returns.
        this.#head = Buffer.from(head);
        return null;
      }
      this.#head = null;
      if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) chunk = head.subarray(3);
      else if (head.length >= 3 && head[0] === 0xff && head[1] === 0xfe) {
        this.#utf16 = new StringDecoder('utf16le');
        chunk = head.subarray(2);
      } else chunk = head;
    }
    if (this.#utf16 === null) return chunk;
    const text = this.#utf16.write(chunk) + (end ? this.#utf16.end() : '');
    return Buffer.from(text, 'utf8');
  }

  /** Cuts `data` into lines (each with its LF); the unfinished last one waits in #carry. */
  #split(data: Buffer): void {
    let s = 0;
    if (this.#carry !== null || this.#dropping) {
      const lf = data.indexOf(LF);
      const upTo = lf < 0 ? data.length : lf + 1;
      if (this.#dropping) {
        if (lf < 0) return;
        this.#dropping = false;
      } else {
        const carry = this.#carry!;
        if (carry.length + upTo > MAX_RECORD_BYTES) this.#startDropping();
        else if (lf >= 0) this.#lineIn(Buffer.concat([carry, data.subarray(0, upTo)]), 0, carry.length + upTo);
        else this.#carry = Buffer.concat([carry, data]);
        if (lf < 0) return;
        if (this.#dropping) this.#dropping = false;
      }
      this.#carry = null;
      s = upTo;
    }
    for (;;) {
      if (!this.#run.pending) s = this.#plainRows(data, s);
      const lf = data.indexOf(LF, s);
      if (lf < 0) break;
      if (lf + 1 - s > MAX_RECORD_BYTES) this.#overlong();
      else this.#lineIn(data, s, lf + 1);
      s = lf + 1;
    }
    if (s === data.length) return;
    if (data.length - s > MAX_RECORD_BYTES) this.#startDropping();
    else this.#carry = Buffer.from(data.subarray(s));
  }

  /** The fast path over as many whole lines from `s` as it takes; returns where it stopped. */
  #plainRows(data: Buffer, s: number): number {
    const r = this.#plain;
    for (;;) {
      this.#room();
      encodeRows(data, s, data.length, this.#agency, this.#out, this.#pos, this.#ends, MAX_RECORD_BYTES, r);
      this.#pos = r.out;
      this.#line += r.lines;
      this.#csvLine += r.lines;
      if (r.pos === s || this.#out.length - this.#pos >= MAX_ENCODED_BET) return r.pos;
      s = r.pos;
    }
  }

  #startDropping(): void {
    this.#carry = null;
    this.#dropping = true;
    this.#overlong();
  }

  /** A line over MAX_RECORD_BYTES: one bad row (after any open quoted record, which it cuts short). */
  #overlong(): void {
    if (this.#run.open) this.#overflow();
    this.#flushRun(false);
    this.#line++;
    this.#csvLine++;
    this.#bad(
      this.#line,
      `more than ${MAX_RECORD_BYTES} bytes without a line end; a row is at most ${MAX_RECORD_BYTES} bytes (is this an agency CSV file, one bet per line?)`,
    );
  }

  /** One whole line b[s, e): LF included, unless it is the file's last. */
  #lineIn(b: Buffer, s: number, e: number): void {
    if (this.#run.open || (this.#run.pending && this.#run.takes(b, s, e))) {
      this.#run.add(b, s, e, this.#csvLine);
      if (this.#run.tooLong) this.#overflow();
      return;
    }
    this.#flushRun(false);
    let z = e;
    if (z > s && b[z - 1] === LF) {
      z--;
      if (z > s && b[z - 1] === CR) z--;
    }
    this.#room();
    const got = encodePlainRow(b, s, z, this.#agency, this.#out, this.#pos);
    if (got === RowKind.CSV) {
      this.#run.add(b, s, e, this.#csvLine);
      if (this.#run.tooLong) this.#overflow();
      return;
    }
    this.#line++;
    this.#csvLine++;
    if (got >= 0) {
      this.#pos = got;
      addEnd(this.#ends, got);
    } else if (got === RowKind.FIELDS) {
      this.#record(cutFields(b, s, z), this.#line);
    }
  }

  /**
   * A quoted field still open MAX_RECORD_BYTES after its record's start: the whole records
   * before it are parsed, the lines of the open record are one bad row, and reading goes
   * on at the next line, at a record start (a stray quote costs at most that many bytes).
   */
  #overflow(): void {
    const over = this.#run.overflow();
    if (over.before !== null) this.#parse(over.before);
    const start = this.#line + 1;
    this.#line += over.lines;
    this.#csvLine += over.csvLines;
    const where = over.lines > 1 ? `lines ${start}-${this.#line}: ` : '';
    this.#bad(
      start,
      `${where}a quote opened on line ${start} is still open ${MAX_RECORD_BYTES} bytes later; a row is at most ${MAX_RECORD_BYTES} bytes (check the quotes on line ${start})`,
    );
  }

  #flushRun(end: boolean): void {
    const run = this.#run.close(end);
    if (run !== null) this.#parse(run);
  }

  /** csv-parse over whole records, in file order; then #csvLine is csv-parse's count after them. */
  #parse(run: Run): void {
    parseRecords(run.bytes, run.csvLine, {
      record: (fields) => {
        const first = this.#line + 1;
        this.#line = first;
        for (const f of fields) for (let i = f.indexOf('\n'); i >= 0; i = f.indexOf('\n', i + 1)) this.#line++;
        if (fields.length !== 1 || fields[0] !== '') this.#record(fields, first);
      },
      // A record csv-parse skips resynchronises the count to the line where it gave up.
      skip: (err: CsvError) => {
        const start = this.#line + 1;
        const end = Number(err.lines ?? start);
        const where = end > start ? `lines ${start}-${end} are one unparsable record (check the quotes on line ${start}): ` : '';
        this.#bad(start, `${where}${err.message.replace(/^Invalid Record Length: /, '')}`);
        this.#line = Math.max(start, end);
      },
    });
    this.#csvLine = run.csvLine + run.csvLines;
  }

  #record(fields: string[], line: number): void {
    const bet = parseAgencyRecord(this.#agency, fields);
    if (typeof bet === 'string') {
      this.#bad(line, bet);
      return;
    }
    this.#room();
    this.#pos = writeBet(this.#out, this.#pos, bet);
    addEnd(this.#ends, this.#pos);
  }

  #room(): void {
    if (this.#out.length - this.#pos >= MAX_ENCODED_BET) return;
    const bigger = Buffer.allocUnsafe(this.#out.length * 2);
    this.#out.copy(bigger, 0, 0, this.#pos);
    this.#out = bigger;
  }
}

/** csv-parse's record of a row without quotes: the row cut at its commas, each field decoded alone. */
function cutFields(b: Buffer, s: number, z: number): string[] {
  const fields: string[] = [];
  for (let a = s; ; ) {
    const comma = b.indexOf(0x2c, a);
    const end = comma < 0 || comma >= z ? z : comma;
    fields.push(b.toString('utf8', a, end));
    if (end === z) return fields;
    a = end + 1;
  }
}
