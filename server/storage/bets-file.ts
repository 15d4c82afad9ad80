/**
 * The course's `store_bets` / `load_bets`, ported. Rows are
 * `agency,first_name,last_name,document,birthdate,number` ending in CRLF, quoted the way
 * Python's csv.writer (QUOTE_MINIMAL) does, so the course's csv.reader reads them back
 * unchanged. Neither function is thread-safe: ProtectedStorage makes them so.
 */
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import type { Bet } from '../../shared/domain/bet.js';

const DEFAULT_STORAGE_PATH = './bets.csv';

function quote(field: string): string {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

export function betToRow(bet: Bet): string {
  return `${bet.agency},${quote(bet.firstName)},${quote(bet.lastName)},${quote(bet.document)},${bet.birthdate},${bet.number}\r\n`;
}

export function betsToRows(bets: readonly Bet[]): Buffer {
  let text = '';
  for (const bet of bets) text += betToRow(bet);
  return Buffer.from(text, 'utf8');
}

/** Writes all of `data`, looping over short writes. */
export function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/**
 * Appends the bets in one write. `target` is an open append-mode fd or a path
 * (opened and closed here, like the course's helper).
 */
export function storeBets(bets: readonly Bet[], target: number | string = DEFAULT_STORAGE_PATH): void {
  const data = betsToRows(bets);
  if (typeof target === 'number') {
    writeAll(target, data);
    return;
  }
  const fd = openSync(target, 'a');
  try {
    writeAll(fd, data);
  } finally {
    closeSync(fd);
  }
}

export class CorruptRowError extends Error {
  constructor(path: string, line: number, problem: string) {
    super(`${path}:${line}: ${problem}`);
    this.name = 'CorruptRowError';
  }
}

/** Splits one stored row; fields never hold line breaks (bets with them are refused). */
export function parseRow(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) throw new Error('unterminated quoted field');
        value += line.slice(j, q);
        if (line[q + 1] === '"') {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      fields.push(line.slice(i, end));
      i = end;
    }
    if (i >= line.length) break;
    if (line[i] !== ',') throw new Error(`expected a comma at column ${i + 1}`);
    i++;
    if (i === line.length) fields.push('');
  }
  return fields;
}

function rowToBet(fields: string[]): Bet | string {
  if (fields.length !== 6) return `expected 6 fields, found ${fields.length}`;
  const [agency, firstName, lastName, document, birthdate, number] = fields as [string, string, string, string, string, string];
  return { agency: Number(agency), firstName, lastName, document, birthdate, number: Number(number) };
}

/** The value of text[start, end) if it is 1 to 15 ASCII digits, else -1. */
function digitsAt(text: string, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

function numberAt(text: string, start: number, end: number): number {
  const value = digitsAt(text, start, end);
  return value >= 0 ? value : Number(text.slice(start, end));
}

/**
 * rowToBet(parseRow(line)) for a row without quotes, read in place from the chunk without
 * splitting; null when the row does not have exactly six fields (the caller then takes the
 * general path, which words the problem).
 */
function plainRowToBet(text: string, start: number, end: number): Bet | null {
  const c1 = text.indexOf(',', start);
  const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1);
  const c3 = c2 < 0 ? -1 : text.indexOf(',', c2 + 1);
  const c4 = c3 < 0 ? -1 : text.indexOf(',', c3 + 1);
  const c5 = c4 < 0 ? -1 : text.indexOf(',', c4 + 1);
  if (c5 < 0 || c5 >= end) return null;
  const c6 = text.indexOf(',', c5 + 1);
  if (c6 >= 0 && c6 < end) return null;
  return {
    agency: numberAt(text, start, c1),
    firstName: text.slice(c1 + 1, c2),
    lastName: text.slice(c2 + 1, c3),
    document: text.slice(c3 + 1, c4),
    birthdate: text.slice(c4 + 1, c5),
    number: numberAt(text, c5 + 1, end),
  };
}

/**
 * Streams the stored bets back in file order, one array per chunk read from the file: the
 * rows of a chunk are parsed synchronously, so a scan pays one await per 64 KiB chunk, not per bet.
 */
export async function* loadBetChunks(path: string = DEFAULT_STORAGE_PATH): AsyncGenerator<Bet[]> {
  let rest = '';
  let lineNo = 0;
  // 64 KiB chunks: a chunk's bets die young (1 MiB ones survived scavenges and were slower; docs/benchmarks.md).
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
    const text = rest + (chunk as string);
    const bets: Bet[] = [];
    let corrupt: CorruptRowError | null = null;
    let start = 0;
    // Rows ending before the next quote are plain: most rows, parsed in place.
    let quote = text.indexOf('"');
    for (let nl = text.indexOf('\n'); nl >= 0 && corrupt === null; nl = text.indexOf('\n', start)) {
      lineNo++;
      const end = text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      if (end > start) {
        if (quote >= 0 && quote < start) quote = text.indexOf('"', start);
        const plain = quote < 0 || quote >= end ? plainRowToBet(text, start, end) : null;
        const bet = plain ?? toBet(path, lineNo, text.slice(start, end));
        if (bet instanceof CorruptRowError) corrupt = bet;
        else bets.push(bet);
      }
      start = nl + 1;
    }
    rest = text.slice(start);
    // The rows before a corrupt one still reach the caller, in order, before the error.
    if (bets.length > 0) yield bets;
    if (corrupt !== null) throw corrupt;
  }
  if (rest !== '') throw new CorruptRowError(path, lineNo + 1, 'last row is incomplete (no line end): the file was cut mid-write');
}

/** The stored bets one by one (see loadBetChunks). */
export async function* loadBets(path: string = DEFAULT_STORAGE_PATH): AsyncGenerator<Bet> {
  for await (const chunk of loadBetChunks(path)) yield* chunk;
}

/** One stored row (without its line end) as load_bets reads it, or what is wrong with it. */
export function toBet(path: string, lineNo: number, line: string): Bet | CorruptRowError {
  let bet: Bet | string;
  try {
    bet = rowToBet(parseRow(line));
  } catch (err) {
    bet = (err as Error).message;
  }
  return typeof bet === 'string' ? new CorruptRowError(path, lineNo, bet) : bet;
}
