/**
 * The course's `store_bets` / `load_bets`, ported. Rows are
 * `agency,first_name,last_name,document,birthdate,number` ending in CRLF, quoted the way
 * Python's csv.writer (QUOTE_MINIMAL) does, so the course's csv.reader reads them back
 * unchanged. Neither function is thread-safe: ProtectedStorage makes them so.
 */
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import type { Bet } from '../../shared/domain/bet.js';

export const DEFAULT_STORAGE_PATH = './bets.csv';

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
  if (typeof target === 'number') return writeAll(target, data);
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
        if (line[q + 1] === '"') { value += '"'; j = q + 2; continue; }
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

/** Streams the stored bets back in file order. */
export async function* loadBets(path: string = DEFAULT_STORAGE_PATH): AsyncGenerator<Bet> {
  let rest = '';
  let lineNo = 0;
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = rest + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      lineNo++;
      const line = text.slice(start, text[nl - 1] === '\r' ? nl - 1 : nl);
      start = nl + 1;
      if (line === '') continue;
      yield toBet(path, lineNo, line);
    }
    rest = text.slice(start);
  }
  if (rest !== '') throw new CorruptRowError(path, lineNo + 1, 'last row is incomplete (no line end): the file was cut mid-write');
}

function toBet(path: string, lineNo: number, line: string): Bet {
  let bet: Bet | string;
  try {
    bet = rowToBet(parseRow(line));
  } catch (err) {
    bet = (err as Error).message;
  }
  if (typeof bet === 'string') throw new CorruptRowError(path, lineNo, bet);
  return bet;
}
